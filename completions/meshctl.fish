# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_meshctl_global_optspecs
    string join \n target= context= n/namespace= kubeconfig= o/output= q/quiet v/verbose h/help V/version
end

function __fish_meshctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_meshctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_meshctl_using_subcommand
    set -l cmd (__fish_meshctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c meshctl -n "__fish_meshctl_needs_command" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_needs_command" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_needs_command" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_needs_command" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_needs_command" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_needs_command" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_needs_command" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_needs_command" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "render" -d 'Print the Gateway, VirtualService and DestinationRule for a service'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "apply" -d 'Apply the rendered resources to the target (server-side apply)'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "rollout" -d 'Start or inspect a canary rollout'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "promote" -d 'Finish a rollout now: send 100% to the new version'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "rollback" -d 'Abort a rollout now: send 100% back to the stable version'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "analyze" -d 'Judge live traffic: compare two versions over one window without moving weights (exit 0 pass, 3 fail, 4 inconclusive)'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "demo" -d 'Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "certs" -d 'Create a development CA and workload certificates for mTLS'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "diff" -d 'Show what `apply` would change, as a unified YAML diff against the live objects'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "doctor" -d 'Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS)'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c meshctl -n "__fish_meshctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s f -l file -d 'Spec file (default: ./meshctl.yaml when present)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l host -d 'External host routed to the service (repeatable)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l gateway -d 'Gateway name (default: `<service>-gateway` when hosts are given)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l port -d 'Service port' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l versions -d 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l weight -d 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l templates -d 'Directory of templates overriding the embedded ones' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l istio-api -d 'Istio API version to emit: v1 (default), v1beta1' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l sticky-cookie -d 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file\'s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)' -r -f
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -l promoted -d 'Render the state after promotion: the canary (the last version) at 100%, every version still a subset. Commit it so git matches the cluster'
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand render" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s f -l file -d 'Spec file (default: ./meshctl.yaml when present)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l host -d 'External host routed to the service (repeatable)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l gateway -d 'Gateway name (default: `<service>-gateway` when hosts are given)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l port -d 'Service port' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l versions -d 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l weight -d 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l templates -d 'Directory of templates overriding the embedded ones' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l istio-api -d 'Istio API version to emit: v1 (default), v1beta1' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l sticky-cookie -d 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file\'s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)' -r -f
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l dry-run -d 'Ask the server to validate without persisting (server-side dry run)'
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -l force-conflicts -d 'Take ownership of fields another field manager owns'
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand apply" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -f -a "start" -d 'Start a canary rollout and drive it to the end'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -f -a "status" -d 'Show the state of a rollout'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and not __fish_seen_subcommand_from start status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s f -l file -d 'Spec file (default: ./meshctl.yaml when present)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l host -d 'External host routed to the service (repeatable)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l gateway -d 'Gateway name (default: `<service>-gateway` when hosts are given)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l port -d 'Service port' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l versions -d 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l weight -d 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l templates -d 'Directory of templates overriding the embedded ones' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l istio-api -d 'Istio API version to emit: v1 (default), v1beta1' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l sticky-cookie -d 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file\'s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)' -r -f
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l to -d 'The new version' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l from -d 'The stable version (default: the one taking traffic now)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l steps -d 'Canary weights per step, comma-separated (e.g. `10,25,50,100`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l step-weight -d 'Weight added per step (with --max-weight)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l max-weight -d 'Last canary weight before promotion (with --step-weight)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l interval -d 'Time between steps / analysis windows (e.g. `30s`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l threshold -d 'Failed checks tolerated before rolling back' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l success-rate -d 'Minimum canary success rate, percent of requests that did not fail (5xx, or a gRPC status of `--grpc-error-codes`) (default 99)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l max-p99 -d 'Maximum canary p99 latency (default `500ms`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l min-requests -d 'Minimum canary requests per analysis window (default 20); with fewer the window is inconclusive (a rollout holds its step)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l grpc-error-codes -d 'gRPC statuses that count as failed requests besides HTTP 5xx: names (case-insensitive) or numbers, comma-separated, `none` for 5xx only (default `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l analysis -d 'How windows are judged: `sequential` (default) accumulates anytime-valid evidence over every window and rolls back when a test rejects at the `--confidence` level; `window` judges each window on its own with point estimates (Flagger-like, meshctl\'s earlier rule)' -r -f -a "sequential\t'Anytime-valid evidence over the whole rollout (default)'
window\t'Each window on its own (Flagger-like)'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l confidence -d 'Confidence of the statistical tests, percent (default 99 with `--analysis sequential`, 95 with `window`): a healthy canary is rolled back with probability at most 100 − confidence per test' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l metrics -d 'meshproxy metrics endpoint (e.g. `http://127.0.0.1:15000/metrics`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l prometheus -d 'Prometheus server URL, queried with PromQL over Istio metrics' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l on-interrupt -d 'On SIGINT/SIGTERM: roll back (default) or pause' -r -f -a "rollback\t'Send 100% back to the stable version (default)'
pause\t'Leave the weights where they are, phase Paused'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l timeout -d 'Progress deadline per step (e.g. `10m`); passing it while held rolls back (exit 4)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l summary -d 'Write a Markdown summary (steps, numbers, verdicts, an SVG chart) here, e.g. `$GITHUB_STEP_SUMMARY`' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l junit -d 'Write a JUnit XML report here: one test case per analysis' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l strategy -d 'How v2 receives traffic: weighted steps (`canary`), only requests matching `--match` (`ab`), mirrored copies first then the steps (`mirror`), or a preview then 100% at once (`bluegreen`)' -r -f -a "canary\t'Weighted canary steps'
ab\t'Header/cookie-matched requests go to v2'
mirror\t'v2 analysed on mirrored copies of live traffic (clients see v1), then the canary steps'
bluegreen\t'v2 analysed on mirrored (or `--match`ed) traffic, then 100% in one write, then one post-switch analysis; a failure rolls back in one write'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l match -d 'With `--strategy ab` (or `bluegreen`, to preview on matched requests instead of mirrored ones): the requests sent to v2, `header:NAME=VALUE` or `cookie:NAME=VALUE`' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l iterations -d 'With `--strategy ab`, `mirror` or `bluegreen`: analysis intervals of the match / mirror / preview phase' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l mirror-percent -d 'With `--strategy mirror` or `bluegreen`: share of live requests mirrored to v2, 1 to 100 (default 100)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l manual-promotion -d 'Hold at the last step (Paused) until `meshctl promote`'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -l no-wait-on-pause -d 'Exit 5 when paused instead of waiting for `meshctl promote`'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -l watch -d 'Keep printing as the rollout changes'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "start" -d 'Start a canary rollout and drive it to the end'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the state of a rollout'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand promote" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand rollback" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l compare -d 'Baseline and canary versions, e.g. `--compare v1 v2`' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l for -d 'Length of the analysis window (e.g. `5m`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l success-rate -d 'Minimum canary success rate, percent of requests that did not fail (5xx, or a gRPC status of `--grpc-error-codes`) (default 99)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l max-p99 -d 'Maximum canary p99 latency (default `500ms`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l min-requests -d 'Minimum canary requests per analysis window (default 20); with fewer the window is inconclusive (a rollout holds its step)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l grpc-error-codes -d 'gRPC statuses that count as failed requests besides HTTP 5xx: names (case-insensitive) or numbers, comma-separated, `none` for 5xx only (default `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l analysis -d 'How windows are judged: `sequential` (default) accumulates anytime-valid evidence over every window and rolls back when a test rejects at the `--confidence` level; `window` judges each window on its own with point estimates (Flagger-like, meshctl\'s earlier rule)' -r -f -a "sequential\t'Anytime-valid evidence over the whole rollout (default)'
window\t'Each window on its own (Flagger-like)'"
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l confidence -d 'Confidence of the statistical tests, percent (default 99 with `--analysis sequential`, 95 with `window`): a healthy canary is rolled back with probability at most 100 − confidence per test' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l metrics -d 'meshproxy metrics endpoint (default `http://127.0.0.1:15000/metrics`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l prometheus -d 'Prometheus server URL, queried with PromQL over Istio metrics' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand analyze" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l interval -d 'Analysis interval' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l dir -d 'Keep the demo\'s files here instead of a temporary directory' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l strategy -d 'How v2 gets traffic: `canary` steps; `ab` (every 4th request carries `x-canary: true`, only those reach v2); `mirror` (v2 judged on copies of every request first, clients see v1, then the steps); `bluegreen` (mirror preview, then 100% in one write)' -r -f -a "canary\t'Weighted canary steps'
ab\t'Header/cookie-matched requests go to v2'
mirror\t'v2 analysed on mirrored copies of live traffic (clients see v1), then the canary steps'
bluegreen\t'v2 analysed on mirrored (or `--match`ed) traffic, then 100% in one write, then one post-switch analysis; a failure rolls back in one write'"
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l protocol -d 'What the upstreams and the load generator speak: `http` (HTTP/1.1), or `grpc` (unary gRPC calls over HTTP/2; `--bad-canary` makes v2 answer 20% of the calls with `INTERNAL`)' -r -f -a "http\t'HTTP/1.1 upstreams and requests'
grpc\t'gRPC upstreams (a port named `grpc`) and unary calls'"
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l bad-canary -d 'Make v2 fail (fault injection) so the rollout rolls back'
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -l mtls -d 'Encrypt proxy traffic with mTLS (certificates from `meshctl certs`)'
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand demo" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -l out -d 'Output directory' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -l name -d 'Workload name to issue a certificate for (repeatable)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -l identity-namespace -d 'Namespace in the SPIFFE identity' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand certs" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s f -l file -d 'Spec file (default: ./meshctl.yaml when present)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l host -d 'External host routed to the service (repeatable)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l gateway -d 'Gateway name (default: `<service>-gateway` when hosts are given)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l port -d 'Service port' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l versions -d 'Versions (subsets), comma-separated, stable first (e.g. `v1,v2`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l weight -d 'Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l templates -d 'Directory of templates overriding the embedded ones' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l istio-api -d 'Istio API version to emit: v1 (default), v1beta1' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l sticky-cookie -d 'Sticky sessions: pin each client to the version it first got with this cookie, rendered as VirtualService routes (default: the spec file\'s `stickyCookie`; `rollout start` also keeps the cookie of sticky routes already applied)' -r -f
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l exit-code -d 'Exit 1 when there are changes, 0 when there are none (like `git diff --exit-code`); errors also exit 1 but print `error:` on stderr'
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -l show-rollout-state -d 'Keep meshctl\'s rollout-state annotation (`meshctl.io/rollout`) in the live objects instead of stripping it'
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand diff" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s f -l file -d 'Spec file to read the service and metrics source from (default: ./meshctl.yaml when present)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l to -d 'The new version (default: the DestinationRule\'s last subset other than --from)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l from -d 'The stable version (default: the one taking traffic now)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l metrics -d 'meshproxy metrics endpoint (default: the spec\'s, else `http://127.0.0.1:15000/metrics`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l prometheus -d 'Prometheus server URL, queried with PromQL over Istio metrics' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -l target -d 'Where resources and rollout state live: `kube` (the current cluster) or `local:DIR` (a directory watched by meshproxy)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -l context -d 'Kubeconfig context to use (default: the current context)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -s n -l namespace -d 'Namespace (default: the context\'s namespace, else `default`)' -r
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -l kubeconfig -d 'Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster)' -r -F
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -s o -l output -d 'Output format' -r -f -a "text\t'Human-readable text; YAML for `render`'
yaml\t'YAML (for `render`; same as text there)'
json\t'JSON: a list for `render`, one event per line for `rollout`'"
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -s q -l quiet -d 'Print only errors'
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c meshctl -n "__fish_meshctl_using_subcommand man" -s V -l version -d 'Print version'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "render" -d 'Print the Gateway, VirtualService and DestinationRule for a service'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "apply" -d 'Apply the rendered resources to the target (server-side apply)'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "rollout" -d 'Start or inspect a canary rollout'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "promote" -d 'Finish a rollout now: send 100% to the new version'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "rollback" -d 'Abort a rollout now: send 100% back to the stable version'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "analyze" -d 'Judge live traffic: compare two versions over one window without moving weights (exit 0 pass, 3 fail, 4 inconclusive)'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "demo" -d 'Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "certs" -d 'Create a development CA and workload certificates for mTLS'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "diff" -d 'Show what `apply` would change, as a unified YAML diff against the live objects'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "doctor" -d 'Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS)'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "man" -d 'Print the man page (roff)'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and not __fish_seen_subcommand_from render apply rollout promote rollback analyze demo certs diff doctor completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "start" -d 'Start a canary rollout and drive it to the end'
complete -c meshctl -n "__fish_meshctl_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "status" -d 'Show the state of a rollout'
