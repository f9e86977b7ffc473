
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'meshctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'meshctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'meshctl' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print the Gateway, VirtualService and DestinationRule for a service')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Apply the rendered resources to the target (server-side apply)')
            [CompletionResult]::new('rollout', 'rollout', [CompletionResultType]::ParameterValue, 'Start or inspect a canary rollout')
            [CompletionResult]::new('promote', 'promote', [CompletionResultType]::ParameterValue, 'Finish a rollout now: send 100% to the new version')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Abort a rollout now: send 100% back to the stable version')
            [CompletionResult]::new('analyze', 'analyze', [CompletionResultType]::ParameterValue, 'Judge live traffic: compare two versions over one window without moving weights (exit 0 pass, 3 fail, 4 inconclusive)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed')
            [CompletionResult]::new('certs', 'certs', [CompletionResultType]::ParameterValue, 'Create a development CA and workload certificates for mTLS')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show what `apply` would change, as a unified YAML diff against the live objects')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'meshctl;render' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'External host routed to the service (repeatable)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway name (default: `<service>-gateway` when hosts are given)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Service port')
            [CompletionResult]::new('--versions', '--versions', [CompletionResultType]::ParameterName, 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)')
            [CompletionResult]::new('--weight', '--weight', [CompletionResultType]::ParameterName, 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)')
            [CompletionResult]::new('--templates', '--templates', [CompletionResultType]::ParameterName, 'Directory of templates overriding the embedded ones')
            [CompletionResult]::new('--istio-api', '--istio-api', [CompletionResultType]::ParameterName, 'Istio API version to emit: v1 (default), v1beta1')
            [CompletionResult]::new('--sticky-cookie', '--sticky-cookie', [CompletionResultType]::ParameterName, 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--promoted', '--promoted', [CompletionResultType]::ParameterName, 'Render the state after promotion: the canary (the last version) at 100%, every version still a subset. Commit it so git matches the cluster')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;apply' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'External host routed to the service (repeatable)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway name (default: `<service>-gateway` when hosts are given)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Service port')
            [CompletionResult]::new('--versions', '--versions', [CompletionResultType]::ParameterName, 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)')
            [CompletionResult]::new('--weight', '--weight', [CompletionResultType]::ParameterName, 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)')
            [CompletionResult]::new('--templates', '--templates', [CompletionResultType]::ParameterName, 'Directory of templates overriding the embedded ones')
            [CompletionResult]::new('--istio-api', '--istio-api', [CompletionResultType]::ParameterName, 'Istio API version to emit: v1 (default), v1beta1')
            [CompletionResult]::new('--sticky-cookie', '--sticky-cookie', [CompletionResultType]::ParameterName, 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Ask the server to validate without persisting (server-side dry run)')
            [CompletionResult]::new('--force-conflicts', '--force-conflicts', [CompletionResultType]::ParameterName, 'Take ownership of fields another field manager owns')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;rollout' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a canary rollout and drive it to the end')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the state of a rollout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'meshctl;rollout;start' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'External host routed to the service (repeatable)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway name (default: `<service>-gateway` when hosts are given)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Service port')
            [CompletionResult]::new('--versions', '--versions', [CompletionResultType]::ParameterName, 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)')
            [CompletionResult]::new('--weight', '--weight', [CompletionResultType]::ParameterName, 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)')
            [CompletionResult]::new('--templates', '--templates', [CompletionResultType]::ParameterName, 'Directory of templates overriding the embedded ones')
            [CompletionResult]::new('--istio-api', '--istio-api', [CompletionResultType]::ParameterName, 'Istio API version to emit: v1 (default), v1beta1')
            [CompletionResult]::new('--sticky-cookie', '--sticky-cookie', [CompletionResultType]::ParameterName, 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The new version')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'The stable version (default: the one taking traffic now)')
            [CompletionResult]::new('--steps', '--steps', [CompletionResultType]::ParameterName, 'Canary weights per step, comma-separated (e.g. `10,25,50,100`)')
            [CompletionResult]::new('--step-weight', '--step-weight', [CompletionResultType]::ParameterName, 'Weight added per step (with --max-weight)')
            [CompletionResult]::new('--max-weight', '--max-weight', [CompletionResultType]::ParameterName, 'Last canary weight before promotion (with --step-weight)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between steps / analysis windows (e.g. `30s`)')
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'Failed checks tolerated before rolling back')
            [CompletionResult]::new('--success-rate', '--success-rate', [CompletionResultType]::ParameterName, 'Minimum canary success rate, percent of requests that did not fail (5xx, or a gRPC status of `--grpc-error-codes`) (default 99)')
            [CompletionResult]::new('--max-p99', '--max-p99', [CompletionResultType]::ParameterName, 'Maximum canary p99 latency (default `500ms`)')
            [CompletionResult]::new('--min-requests', '--min-requests', [CompletionResultType]::ParameterName, 'Minimum canary requests per analysis window (default 20); with fewer the window is inconclusive (a rollout holds its step)')
            [CompletionResult]::new('--grpc-error-codes', '--grpc-error-codes', [CompletionResultType]::ParameterName, 'gRPC statuses that count as failed requests besides HTTP 5xx: names (case-insensitive) or numbers, comma-separated, `none` for 5xx only (default `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`)')
            [CompletionResult]::new('--analysis', '--analysis', [CompletionResultType]::ParameterName, 'How windows are judged: `sequential` (default) accumulates anytime-valid evidence over every window and rolls back when a test rejects at the `--confidence` level; `window` judges each window on its own with point estimates (Flagger-like, meshctl''s earlier rule)')
            [CompletionResult]::new('--confidence', '--confidence', [CompletionResultType]::ParameterName, 'Confidence of the statistical tests, percent (default 99 with `--analysis sequential`, 95 with `window`): a healthy canary is rolled back with probability at most 100 − confidence per test')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'meshproxy metrics endpoint (e.g. `http://127.0.0.1:15000/metrics`)')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Prometheus server URL, queried with PromQL over Istio metrics')
            [CompletionResult]::new('--on-interrupt', '--on-interrupt', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM: roll back (default) or pause')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Progress deadline per step (e.g. `10m`); passing it while held rolls back (exit 4)')
            [CompletionResult]::new('--summary', '--summary', [CompletionResultType]::ParameterName, 'Write a Markdown summary (steps, numbers, verdicts, an SVG chart) here, e.g. `$GITHUB_STEP_SUMMARY`')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Write a JUnit XML report here: one test case per analysis')
            [CompletionResult]::new('--strategy', '--strategy', [CompletionResultType]::ParameterName, 'How v2 receives traffic: weighted steps (`canary`), only requests matching `--match` (`ab`), mirrored copies first then the steps (`mirror`), or a preview then 100% at once (`bluegreen`)')
            [CompletionResult]::new('--match', '--match', [CompletionResultType]::ParameterName, 'With `--strategy ab` (or `bluegreen`, to preview on matched requests instead of mirrored ones): the requests sent to v2, `header:NAME=VALUE` or `cookie:NAME=VALUE`')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'With `--strategy ab`, `mirror` or `bluegreen`: analysis intervals of the match / mirror / preview phase')
            [CompletionResult]::new('--mirror-percent', '--mirror-percent', [CompletionResultType]::ParameterName, 'With `--strategy mirror` or `bluegreen`: share of live requests mirrored to v2, 1 to 100 (default 100)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--manual-promotion', '--manual-promotion', [CompletionResultType]::ParameterName, 'Hold at the last step (Paused) until `meshctl promote`')
            [CompletionResult]::new('--no-wait-on-pause', '--no-wait-on-pause', [CompletionResultType]::ParameterName, 'Exit 5 when paused instead of waiting for `meshctl promote`')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;rollout;status' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Keep printing as the rollout changes')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;rollout;help' {
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a canary rollout and drive it to the end')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the state of a rollout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'meshctl;rollout;help;start' {
            break
        }
        'meshctl;rollout;help;status' {
            break
        }
        'meshctl;rollout;help;help' {
            break
        }
        'meshctl;promote' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;rollback' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;analyze' {
            [CompletionResult]::new('--compare', '--compare', [CompletionResultType]::ParameterName, 'Baseline and canary versions, e.g. `--compare v1 v2`')
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'Length of the analysis window (e.g. `5m`)')
            [CompletionResult]::new('--success-rate', '--success-rate', [CompletionResultType]::ParameterName, 'Minimum canary success rate, percent of requests that did not fail (5xx, or a gRPC status of `--grpc-error-codes`) (default 99)')
            [CompletionResult]::new('--max-p99', '--max-p99', [CompletionResultType]::ParameterName, 'Maximum canary p99 latency (default `500ms`)')
            [CompletionResult]::new('--min-requests', '--min-requests', [CompletionResultType]::ParameterName, 'Minimum canary requests per analysis window (default 20); with fewer the window is inconclusive (a rollout holds its step)')
            [CompletionResult]::new('--grpc-error-codes', '--grpc-error-codes', [CompletionResultType]::ParameterName, 'gRPC statuses that count as failed requests besides HTTP 5xx: names (case-insensitive) or numbers, comma-separated, `none` for 5xx only (default `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`)')
            [CompletionResult]::new('--analysis', '--analysis', [CompletionResultType]::ParameterName, 'How windows are judged: `sequential` (default) accumulates anytime-valid evidence over every window and rolls back when a test rejects at the `--confidence` level; `window` judges each window on its own with point estimates (Flagger-like, meshctl''s earlier rule)')
            [CompletionResult]::new('--confidence', '--confidence', [CompletionResultType]::ParameterName, 'Confidence of the statistical tests, percent (default 99 with `--analysis sequential`, 95 with `window`): a healthy canary is rolled back with probability at most 100 − confidence per test')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'meshproxy metrics endpoint (default `http://127.0.0.1:15000/metrics`)')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Prometheus server URL, queried with PromQL over Istio metrics')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;demo' {
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Analysis interval')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Keep the demo''s files here instead of a temporary directory')
            [CompletionResult]::new('--strategy', '--strategy', [CompletionResultType]::ParameterName, 'How v2 gets traffic: `canary` steps; `ab` (every 4th request carries `x-canary: true`, only those reach v2); `mirror` (v2 judged on copies of every request first, clients see v1, then the steps); `bluegreen` (mirror preview, then 100% in one write)')
            [CompletionResult]::new('--protocol', '--protocol', [CompletionResultType]::ParameterName, 'What the upstreams and the load generator speak: `http` (HTTP/1.1), or `grpc` (unary gRPC calls over HTTP/2; `--bad-canary` makes v2 answer 20% of the calls with `INTERNAL`)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--bad-canary', '--bad-canary', [CompletionResultType]::ParameterName, 'Make v2 fail (fault injection) so the rollout rolls back')
            [CompletionResult]::new('--mtls', '--mtls', [CompletionResultType]::ParameterName, 'Encrypt proxy traffic with mTLS (certificates from `meshctl certs`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;certs' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Output directory')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Workload name to issue a certificate for (repeatable)')
            [CompletionResult]::new('--identity-namespace', '--identity-namespace', [CompletionResultType]::ParameterName, 'Namespace in the SPIFFE identity')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;diff' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Spec file (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'External host routed to the service (repeatable)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Gateway name (default: `<service>-gateway` when hosts are given)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Service port')
            [CompletionResult]::new('--versions', '--versions', [CompletionResultType]::ParameterName, 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)')
            [CompletionResult]::new('--weight', '--weight', [CompletionResultType]::ParameterName, 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)')
            [CompletionResult]::new('--templates', '--templates', [CompletionResultType]::ParameterName, 'Directory of templates overriding the embedded ones')
            [CompletionResult]::new('--istio-api', '--istio-api', [CompletionResultType]::ParameterName, 'Istio API version to emit: v1 (default), v1beta1')
            [CompletionResult]::new('--sticky-cookie', '--sticky-cookie', [CompletionResultType]::ParameterName, 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file''s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--exit-code', '--exit-code', [CompletionResultType]::ParameterName, 'Exit 1 when there are changes, 0 when there are none (like `git diff --exit-code`); errors also exit 1 but print `error:` on stderr')
            [CompletionResult]::new('--show-rollout-state', '--show-rollout-state', [CompletionResultType]::ParameterName, 'Keep meshctl''s rollout-state annotation (`meshctl.io/rollout`) in the live objects instead of stripping it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;doctor' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Spec file to read the service and metrics source from (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Spec file to read the service and metrics source from (default: ./meshctl.yaml when present)')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The new version (default: the DestinationRule''s last subset other than --from)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'The stable version (default: the one taking traffic now)')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'meshproxy metrics endpoint (default: the spec''s, else `http://127.0.0.1:15000/metrics`)')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Prometheus server URL, queried with PromQL over Istio metrics')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;completions' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;man' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Kubeconfig context to use (default: the current context)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace (default: the context''s namespace, else `default`)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'meshctl;help' {
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print the Gateway, VirtualService and DestinationRule for a service')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Apply the rendered resources to the target (server-side apply)')
            [CompletionResult]::new('rollout', 'rollout', [CompletionResultType]::ParameterValue, 'Start or inspect a canary rollout')
            [CompletionResult]::new('promote', 'promote', [CompletionResultType]::ParameterValue, 'Finish a rollout now: send 100% to the new version')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Abort a rollout now: send 100% back to the stable version')
            [CompletionResult]::new('analyze', 'analyze', [CompletionResultType]::ParameterValue, 'Judge live traffic: compare two versions over one window without moving weights (exit 0 pass, 3 fail, 4 inconclusive)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed')
            [CompletionResult]::new('certs', 'certs', [CompletionResultType]::ParameterValue, 'Create a development CA and workload certificates for mTLS')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show what `apply` would change, as a unified YAML diff against the live objects')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'meshctl;help;render' {
            break
        }
        'meshctl;help;apply' {
            break
        }
        'meshctl;help;rollout' {
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a canary rollout and drive it to the end')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the state of a rollout')
            break
        }
        'meshctl;help;rollout;start' {
            break
        }
        'meshctl;help;rollout;status' {
            break
        }
        'meshctl;help;promote' {
            break
        }
        'meshctl;help;rollback' {
            break
        }
        'meshctl;help;analyze' {
            break
        }
        'meshctl;help;demo' {
            break
        }
        'meshctl;help;certs' {
            break
        }
        'meshctl;help;diff' {
            break
        }
        'meshctl;help;doctor' {
            break
        }
        'meshctl;help;completions' {
            break
        }
        'meshctl;help;man' {
            break
        }
        'meshctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
