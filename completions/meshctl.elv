
use builtin;
use str;

set edit:completion:arg-completer[meshctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'meshctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'meshctl'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand render 'Print the Gateway, VirtualService and DestinationRule for a service'
            cand apply 'Apply the rendered resources to the target (server-side apply)'
            cand rollout 'Start or inspect a canary rollout'
            cand promote 'Finish a rollout now: send 100% to the new version'
            cand rollback 'Abort a rollout now: send 100% back to the stable version'
            cand analyze 'Judge live traffic: compare two versions over one window without moving weights (exit 0 pass, 3 fail, 4 inconclusive)'
            cand demo 'Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed'
            cand certs 'Create a development CA and workload certificates for mTLS'
            cand diff 'Show what `apply` would change, as a unified YAML diff against the live objects'
            cand doctor 'Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS)'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'meshctl;render'= {
            cand -f 'Spec file (default: ./meshctl.yaml when present)'
            cand --file 'Spec file (default: ./meshctl.yaml when present)'
            cand --host 'External host routed to the service (repeatable)'
            cand --gateway 'Gateway name (default: `<service>-gateway` when hosts are given)'
            cand --port 'Service port'
            cand --versions 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)'
            cand --weight 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)'
            cand --templates 'Directory of templates overriding the embedded ones'
            cand --istio-api 'Istio API version to emit: v1 (default), v1beta1'
            cand --sticky-cookie 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --promoted 'Render the state after promotion: the canary (the last version) at 100%, every version still a subset. Commit it so git matches the cluster'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;apply'= {
            cand -f 'Spec file (default: ./meshctl.yaml when present)'
            cand --file 'Spec file (default: ./meshctl.yaml when present)'
            cand --host 'External host routed to the service (repeatable)'
            cand --gateway 'Gateway name (default: `<service>-gateway` when hosts are given)'
            cand --port 'Service port'
            cand --versions 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)'
            cand --weight 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)'
            cand --templates 'Directory of templates overriding the embedded ones'
            cand --istio-api 'Istio API version to emit: v1 (default), v1beta1'
            cand --sticky-cookie 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --dry-run 'Ask the server to validate without persisting (server-side dry run)'
            cand --force-conflicts 'Take ownership of fields another field manager owns'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;rollout'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand start 'Start a canary rollout and drive it to the end'
            cand status 'Show the state of a rollout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'meshctl;rollout;start'= {
            cand -f 'Spec file (default: ./meshctl.yaml when present)'
            cand --file 'Spec file (default: ./meshctl.yaml when present)'
            cand --host 'External host routed to the service (repeatable)'
            cand --gateway 'Gateway name (default: `<service>-gateway` when hosts are given)'
            cand --port 'Service port'
            cand --versions 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)'
            cand --weight 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)'
            cand --templates 'Directory of templates overriding the embedded ones'
            cand --istio-api 'Istio API version to emit: v1 (default), v1beta1'
            cand --sticky-cookie 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)'
            cand --to 'The new version'
            cand --from 'The stable version (default: the one taking traffic now)'
            cand --steps 'Canary weights per step, comma-separated (e.g. `10,25,50,100`)'
            cand --step-weight 'Weight added per step (with --max-weight)'
            cand --max-weight 'Last canary weight before promotion (with --step-weight)'
            cand --interval 'Time between steps / analysis windows (e.g. `30s`)'
            cand --threshold 'Failed checks tolerated before rolling back'
            cand --success-rate 'Minimum canary success rate, percent of requests that did not fail (5xx, or a gRPC status of `--grpc-error-codes`) (default 99)'
            cand --max-p99 'Maximum canary p99 latency (default `500ms`)'
            cand --min-requests 'Minimum canary requests per analysis window (default 20); with fewer the window is inconclusive (a rollout holds its step)'
            cand --grpc-error-codes 'gRPC statuses that count as failed requests besides HTTP 5xx: names (case-insensitive) or numbers, comma-separated, `none` for 5xx only (default `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`)'
            cand --analysis 'How windows are judged: `sequential` (default) accumulates anytime-valid evidence over every window and rolls back when a test rejects at the `--confidence` level; `window` judges each window on its own with point estimates (Flagger-like, meshctl''s earlier rule)'
            cand --confidence 'Confidence of the statistical tests, percent (default 99 with `--analysis sequential`, 95 with `window`): a healthy canary is rolled back with probability at most 100 − confidence per test'
            cand --metrics 'meshproxy metrics endpoint (e.g. `http://127.0.0.1:15000/metrics`)'
            cand --prometheus 'Prometheus server URL, queried with PromQL over Istio metrics'
            cand --on-interrupt 'On SIGINT/SIGTERM: roll back (default) or pause'
            cand --timeout 'Progress deadline per step (e.g. `10m`); passing it while held rolls back (exit 4)'
            cand --summary 'Write a Markdown summary (steps, numbers, verdicts, an SVG chart) here, e.g. `$GITHUB_STEP_SUMMARY`'
            cand --junit 'Write a JUnit XML report here: one test case per analysis'
            cand --strategy 'How v2 receives traffic: weighted steps (`canary`), only requests matching `--match` (`ab`), mirrored copies first then the steps (`mirror`), or a preview then 100% at once (`bluegreen`)'
            cand --match 'With `--strategy ab` (or `bluegreen`, to preview on matched requests instead of mirrored ones): the requests sent to v2, `header:NAME=VALUE` or `cookie:NAME=VALUE`'
            cand --iterations 'With `--strategy ab`, `mirror` or `bluegreen`: analysis intervals of the match / mirror / preview phase'
            cand --mirror-percent 'With `--strategy mirror` or `bluegreen`: share of live requests mirrored to v2, 1 to 100 (default 100)'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --manual-promotion 'Hold at the last step (Paused) until `meshctl promote`'
            cand --no-wait-on-pause 'Exit 5 when paused instead of waiting for `meshctl promote`'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;rollout;status'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --watch 'Keep printing as the rollout changes'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;rollout;help'= {
            cand start 'Start a canary rollout and drive it to the end'
            cand status 'Show the state of a rollout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'meshctl;rollout;help;start'= {
        }
        &'meshctl;rollout;help;status'= {
        }
        &'meshctl;rollout;help;help'= {
        }
        &'meshctl;promote'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;rollback'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;analyze'= {
            cand --compare 'Baseline and canary versions, e.g. `--compare v1 v2`'
            cand --for 'Length of the analysis window (e.g. `5m`)'
            cand --success-rate 'Minimum canary success rate, percent of requests that did not fail (5xx, or a gRPC status of `--grpc-error-codes`) (default 99)'
            cand --max-p99 'Maximum canary p99 latency (default `500ms`)'
            cand --min-requests 'Minimum canary requests per analysis window (default 20); with fewer the window is inconclusive (a rollout holds its step)'
            cand --grpc-error-codes 'gRPC statuses that count as failed requests besides HTTP 5xx: names (case-insensitive) or numbers, comma-separated, `none` for 5xx only (default `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`)'
            cand --analysis 'How windows are judged: `sequential` (default) accumulates anytime-valid evidence over every window and rolls back when a test rejects at the `--confidence` level; `window` judges each window on its own with point estimates (Flagger-like, meshctl''s earlier rule)'
            cand --confidence 'Confidence of the statistical tests, percent (default 99 with `--analysis sequential`, 95 with `window`): a healthy canary is rolled back with probability at most 100 − confidence per test'
            cand --metrics 'meshproxy metrics endpoint (default `http://127.0.0.1:15000/metrics`)'
            cand --prometheus 'Prometheus server URL, queried with PromQL over Istio metrics'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;demo'= {
            cand --interval 'Analysis interval'
            cand --dir 'Keep the demo''s files here instead of a temporary directory'
            cand --strategy 'How v2 gets traffic: `canary` steps; `ab` (every 4th request carries `x-canary: true`, only those reach v2); `mirror` (v2 judged on copies of every request first, clients see v1, then the steps); `bluegreen` (mirror preview, then 100% in one write)'
            cand --protocol 'What the upstreams and the load generator speak: `http` (HTTP/1.1), or `grpc` (unary gRPC calls over HTTP/2; `--bad-canary` makes v2 answer 20% of the calls with `INTERNAL`)'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --bad-canary 'Make v2 fail (fault injection) so the rollout rolls back'
            cand --mtls 'Encrypt proxy traffic with mTLS (certificates from `meshctl certs`)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;certs'= {
            cand --out 'Output directory'
            cand --name 'Workload name to issue a certificate for (repeatable)'
            cand --identity-namespace 'Namespace in the SPIFFE identity'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;diff'= {
            cand -f 'Spec file (default: ./meshctl.yaml when present)'
            cand --file 'Spec file (default: ./meshctl.yaml when present)'
            cand --host 'External host routed to the service (repeatable)'
            cand --gateway 'Gateway name (default: `<service>-gateway` when hosts are given)'
            cand --port 'Service port'
            cand --versions 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)'
            cand --weight 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)'
            cand --templates 'Directory of templates overriding the embedded ones'
            cand --istio-api 'Istio API version to emit: v1 (default), v1beta1'
            cand --sticky-cookie 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --exit-code 'Exit 1 when there are changes, 0 when there are none (like `git diff --exit-code`); errors also exit 1 but print `error:` on stderr'
            cand --show-rollout-state 'Keep meshctl''s rollout-state annotation (`meshctl.io/rollout`) in the live objects instead of stripping it'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;doctor'= {
            cand -f 'Spec file to read the service and metrics source from (default: ./meshctl.yaml when present)'
            cand --file 'Spec file to read the service and metrics source from (default: ./meshctl.yaml when present)'
            cand --to 'The new version (default: the DestinationRule''s last subset other than --from)'
            cand --from 'The stable version (default: the one taking traffic now)'
            cand --metrics 'meshproxy metrics endpoint (default: the spec''s, else `http://127.0.0.1:15000/metrics`)'
            cand --prometheus 'Prometheus server URL, queried with PromQL over Istio metrics'
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;completions'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;man'= {
            cand --target 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)'
            cand --context 'Kubeconfig context to use (default: the current context)'
            cand -n 'Namespace (default: the context''s namespace, else `default`)'
            cand --namespace 'Namespace (default: the context''s namespace, else `default`)'
            cand --kubeconfig 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'meshctl;help'= {
            cand render 'Print the Gateway, VirtualService and DestinationRule for a service'
            cand apply 'Apply the rendered resources to the target (server-side apply)'
            cand rollout 'Start or inspect a canary rollout'
            cand promote 'Finish a rollout now: send 100% to the new version'
            cand rollback 'Abort a rollout now: send 100% back to the stable version'
            cand analyze 'Judge live traffic: compare two versions over one window without moving weights (exit 0 pass, 3 fail, 4 inconclusive)'
            cand demo 'Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed'
            cand certs 'Create a development CA and workload certificates for mTLS'
            cand diff 'Show what `apply` would change, as a unified YAML diff against the live objects'
            cand doctor 'Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS)'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'meshctl;help;render'= {
        }
        &'meshctl;help;apply'= {
        }
        &'meshctl;help;rollout'= {
            cand start 'Start a canary rollout and drive it to the end'
            cand status 'Show the state of a rollout'
        }
        &'meshctl;help;rollout;start'= {
        }
        &'meshctl;help;rollout;status'= {
        }
        &'meshctl;help;promote'= {
        }
        &'meshctl;help;rollback'= {
        }
        &'meshctl;help;analyze'= {
        }
        &'meshctl;help;demo'= {
        }
        &'meshctl;help;certs'= {
        }
        &'meshctl;help;diff'= {
        }
        &'meshctl;help;doctor'= {
        }
        &'meshctl;help;completions'= {
        }
        &'meshctl;help;man'= {
        }
        &'meshctl;help;help'= {
        }
    ]
    $completions[$command]
}
