//! Every way `meshctl render` refuses bad input, each with its exact message:
//! exit 1, nothing on stdout, one `error:` line naming the file (with line
//! and column) or the flag, the field, and the fix. Usage errors exit 2.

use std::path::Path;

use mesh_test_support::meshctl::words;

use crate::util::meshctl;

/// Runs `meshctl render ARGS` in a temp dir holding `files`; asserts exit 1
/// and an empty stdout; returns stderr.
fn fails(files: &[(&str, &str)], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let out = meshctl()
        .current_dir(dir.path())
        .arg("render")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed on failure");
    stderr
}

/// `meshctl render` with the flags in `line` (split on whitespace) and no files.
fn flags_fail(line: &str) -> String {
    fails(&[], &words(line))
}

/// A spec file `meshctl.yaml` with `text`, rendered with `-f`.
fn spec_fails(text: &str) -> String {
    fails(&[("meshctl.yaml", text)], &["-f", "meshctl.yaml"])
}

#[track_caller]
fn assert_msg(actual: String, expected: &str) {
    assert_eq!(actual, format!("error: {expected}\n"));
}

// === the spec file ===

#[test]
fn malformed_yaml() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1, v2\n"),
        "meshctl.yaml: line 3 column 1 at field `versions`: did not find expected ',' or ']'",
    );
}

#[test]
fn unknown_field() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\nwieghts: {v1: 100}\n"),
        "meshctl.yaml: line 3 column 1 at field `wieghts`: unknown field `wieghts`, expected one of `service`, `namespace`, `hosts`, `gateway`, `port`, `versions`, `weights`, `istioApi`, `rollout`, `metrics`, `webhooks`, `stickyCookie`",
    );
}

#[test]
fn unknown_nested_field() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\ngateway:\n  tls: {credentalName: x}\n"),
        "meshctl.yaml: line 4 column 9 at field `gateway.tls.credentalName`: unknown field `credentalName`, expected `credentialName`",
    );
}

#[test]
fn wrong_type() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\nport: eighty\n"),
        "meshctl.yaml: line 3 column 7 at field `port`: invalid type: string \"eighty\", expected a port number from 1 to 65535",
    );
}

#[test]
fn wrong_type_of_duration() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\nrollout:\n  interval: 30\n"),
        "meshctl.yaml: line 4 column 13 at field `rollout.interval`: \"30\" is neither a duration nor `auto`: use a number with a unit, e.g. \"30s\", \"500ms\" or \"5m\", or `auto` to size each window from the traffic",
    );
}

#[test]
fn missing_service_in_file() {
    assert_msg(
        spec_fails("versions: [v1]\n"),
        "meshctl.yaml: no service name: add `service: NAME` to the file or pass SERVICE (e.g. `meshctl render discounts`)",
    );
}

#[test]
fn missing_service_without_file() {
    assert_msg(
        flags_fail("--versions v1"),
        "SERVICE: no service name: pass SERVICE (e.g. `meshctl render discounts --versions v1,v2`) or write it in meshctl.yaml (`-f FILE`)",
    );
}

#[test]
fn bad_service_name() {
    assert_msg(
        flags_fail("Discounts --versions v1"),
        "SERVICE \"Discounts\": \"Discounts\" is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. discounts)",
    );
}

#[test]
fn missing_versions() {
    assert_msg(
        flags_fail("discounts"),
        "--versions: no versions: list them, stable first, with `versions: [v1, v2]` in meshctl.yaml or `--versions v1,v2`",
    );
}

#[test]
fn bad_version_name() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1, V2]\n"),
        "meshctl.yaml: line 2 column 16 at field `versions[1]`: \"V2\" is not a valid version name: use lowercase letters, digits and '-' (e.g. v2)",
    );
    assert_msg(
        flags_fail("discounts --versions v1,v_2"),
        "--versions \"v_2\": \"v_2\" is not a valid version name: use lowercase letters, digits and '-' (e.g. v2)",
    );
}

#[test]
fn duplicate_version() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1, v2, v1]\n"),
        "meshctl.yaml: line 2 column 11 at field `versions`: version \"v1\" is given twice: each version needs its own name",
    );
    assert_msg(
        flags_fail("discounts --versions v1,v1"),
        "--versions \"v1\": version \"v1\" is given twice: each version needs its own name",
    );
}

#[test]
fn weights_not_summing_to_100() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1, v2]\nweights:\n  v1: 90\n  v2: 20\n"),
        "meshctl.yaml: line 4 column 3 at field `weights`: weights sum to 110, not 100 (v1=90, v2=20): make the weights add up to 100",
    );
    assert_msg(
        flags_fail("discounts --versions v1,v2 --weight v1=90 --weight v2=5"),
        "--weight \"v1=90 v2=5\": weights sum to 95, not 100 (v1=90, v2=5): make the weights add up to 100",
    );
}

#[test]
fn weight_out_of_range() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\nweights: {v1: 150}\n"),
        "meshctl.yaml: line 3 column 15 at field `weights.v1`: weight 150 is out of range: use 0 to 100",
    );
}

#[test]
fn weight_for_unknown_version() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1, v2]\nweights:\n  v1: 90\n  v3: 10\n"),
        "meshctl.yaml: line 5 column 3 at field `weights.v3`: version \"v3\" is not one of the versions (v1, v2): add it to `versions` or remove its weight",
    );
    assert_msg(
        flags_fail("discounts --versions v1 --weight v1=50 --weight v2=50"),
        "--weight \"v1=50 v2=50\": version \"v2\" is not one of the versions (v1): add it to the versions or remove its weight",
    );
}

#[test]
fn bad_host() {
    assert_msg(
        spec_fails(
            "service: discounts\nversions: [v1]\nhosts:\n  - shop.example.com\n  - bad host\n",
        ),
        "meshctl.yaml: line 5 column 5 at field `hosts[1]`: \"bad host\" is not a valid host name: use a DNS name such as discounts.example.com or *.example.com",
    );
    assert_msg(
        flags_fail("discounts --versions v1 --host shop_example.com"),
        "--host \"shop_example.com\": \"shop_example.com\" is not a valid host name: use a DNS name such as discounts.example.com or *.example.com",
    );
}

#[test]
fn port_out_of_range() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\nport: 70000\n"),
        "meshctl.yaml: line 3 column 7 at field `port`: port 70000 is out of range: use 1 to 65535",
    );
    assert_msg(
        spec_fails(
            "service: discounts\nhosts: [a.example.com]\nversions: [v1]\ngateway: {port: 0}\n",
        ),
        "meshctl.yaml: line 4 column 17 at field `gateway.port`: port 0 is out of range: use 1 to 65535",
    );
    assert_msg(
        flags_fail("discounts --versions v1 --port 0"),
        "--port \"0\": port 0 is out of range: use 1 to 65535",
    );
}

#[test]
fn gateway_without_hosts() {
    assert_msg(
        spec_fails("service: discounts\nversions: [v1]\ngateway:\n  name: edge\n"),
        "meshctl.yaml: line 3 column 1 at field `gateway`: a gateway needs external hosts: add `hosts: [discounts.example.com]` or remove `gateway`",
    );
    assert_msg(
        flags_fail("discounts --versions v1 --gateway edge"),
        "--gateway \"edge\": a gateway needs external hosts: add --host (e.g. --host discounts.example.com)",
    );
}

#[test]
fn bad_rollout_and_metrics() {
    assert_msg(
        spec_fails("service: d\nversions: [v1]\nrollout:\n  steps: [10, 50, 30]\n"),
        "meshctl.yaml: line 4 column 3 at field `rollout.steps`: steps must increase: 30 comes after 50 (e.g. [10, 25, 50, 100])",
    );
    assert_msg(
        spec_fails("service: d\nversions: [v1]\nmetrics:\n  proxy: ftp://x\n"),
        "meshctl.yaml: line 4 column 10 at field `metrics.proxy`: \"ftp://x\" is not an http(s) URL: use an absolute http(s) URL, e.g. http://127.0.0.1:15000/metrics",
    );
    assert_msg(
        spec_fails(
            "service: d\nversions: [v1]\nwebhooks:\n- {name: a, type: pre-rolout, url: 'http://x'}\n",
        ),
        "meshctl.yaml: line 4 column 19 at field `webhooks[0].type`: unknown variant `pre-rolout`, expected one of `pre-rollout`, `rollout`, `post-rollout`, `rollback`",
    );
}

#[test]
fn bad_sticky_cookie() {
    assert_msg(
        spec_fails("service: d\nversions: [v1, v2]\nstickyCookie: \"my cookie\"\n"),
        "meshctl.yaml: line 3 column 15 at field `stickyCookie`: \"my cookie\" is not a valid cookie name: it holds a character not allowed in a cookie name (space, quote, `=`, `;`, `,`, `/`, brackets or a control character); use letters, digits and !#$%&'*+-.^_`|~ (e.g. meshctl-version)",
    );
    assert_msg(
        flags_fail("discounts --versions v1,v2 --sticky-cookie ver=1"),
        "--sticky-cookie \"ver=1\": \"ver=1\" is not a valid cookie name: it holds a character not allowed in a cookie name (space, quote, `=`, `;`, `,`, `/`, brackets or a control character); use letters, digits and !#$%&'*+-.^_`|~ (e.g. meshctl-version)",
    );
}

#[test]
fn bad_istio_api() {
    assert_msg(
        flags_fail("discounts --versions v1 --istio-api v2"),
        "--istio-api \"v2\": unsupported Istio API version: use v1 (Istio 1.22 and later) or v1beta1",
    );
}

#[test]
fn missing_spec_file() {
    assert_msg(
        flags_fail("-f nope.yaml"),
        "reading nope.yaml: No such file or directory (os error 2)",
    );
}

// === templates ===

/// `--templates tpl` holding one file.
fn template_fails(name: &str, text: &str) -> String {
    let path = format!("tpl/{name}");
    fails(
        &[(path.as_str(), text)],
        &["discounts", "--versions", "v1,v2", "--templates", "tpl"],
    )
}

/// The repository's template `name` with `from` replaced by `to`, in
/// `--templates tpl` alone.
fn edited_template_fails(name: &str, from: &str, to: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(name);
    let text = std::fs::read_to_string(path).expect("the repository's template");
    template_fails(name, &text.replace(from, to))
}

#[test]
fn template_syntax_error() {
    assert_msg(
        template_fails(
            "virtualservice.yaml.j2",
            "apiVersion: {{ api_version }}\nkind: VirtualService\n{% for r in route %}\nmetadata: {}\n",
        ),
        "tpl/virtualservice.yaml.j2: line 4: syntax error: unexpected end of input, expected end of block",
    );
}

#[test]
fn template_undefined_variable() {
    assert_msg(
        template_fails(
            "destinationrule.yaml.j2",
            "apiVersion: {{ api_version }}\nkind: DestinationRule\nmetadata:\n  name: {{ servise }}\n",
        ),
        "tpl/destinationrule.yaml.j2: line 4: undefined value: `servise` is undefined",
    );
}

#[test]
fn template_output_not_yaml() {
    assert_msg(
        template_fails(
            "destinationrule.yaml.j2",
            "apiVersion: {{ api_version }}\nkind: DestinationRule\nmetadata:\n  name: {{ service }}\n spec: [\n",
        ),
        "tpl/destinationrule.yaml.j2: the output is not a valid Istio resource (output line 5: `spec: [`): line 5 column 2: did not find expected key",
    );
}

#[test]
fn template_output_wrong_type() {
    assert_msg(
        template_fails(
            "destinationrule.yaml.j2",
            "apiVersion: {{ api_version }}\nkind: DestinationRule\nmetadata:\n  name: {{ service }}\nspec:\n  host: {{ service }}\n  subsets: {{ versions[0].name }}\n",
        ),
        "tpl/destinationrule.yaml.j2: the output is not a valid Istio resource (output line 7: `subsets: \"v1\"`): line 7 column 12 at field `spec.subsets`: invalid type: string \"v1\", expected a sequence",
    );
}

#[test]
fn template_output_fails_validation() {
    let subset = "subset: {{ r.version }}";
    let suffixed = "subset: {{ r.version ~ \"-x\" }}";
    assert_msg(
        edited_template_fails("virtualservice.yaml.j2", subset, suffixed),
        "tpl/virtualservice.yaml.j2: rendered resources are invalid: 1 invalid field\n  - VirtualService/discounts spec.http[0].route[0].destination.subset: subset \"v1-x\" of host \"discounts\" is not defined in its DestinationRule (defined: v1, v2)",
    );
}

#[test]
fn template_output_with_unsupported_field() {
    let host = "  host: {{ service }}\n";
    let outlier =
        format!("{host}  trafficPolicy:\n    outlierDetection: {{consecutive5xxErrors: 5}}\n");
    assert_msg(
        edited_template_fails("destinationrule.yaml.j2", host, &outlier),
        "tpl/destinationrule.yaml.j2: the output has a field meshctl does not support: DestinationRule/discounts spec.trafficPolicy.outlierDetection: remove it from the template",
    );
}

#[test]
fn template_output_not_matching_the_spec() {
    assert_msg(
        edited_template_fails("virtualservice.yaml.j2", "name: primary", "name: main"),
        "tpl/virtualservice.yaml.j2: VirtualService/discounts has no http route named \"primary\": a rollout shifts the weights of that route",
    );
}

#[test]
fn unknown_template_file() {
    assert_msg(
        template_fails("virtualservices.yaml.j2", ""),
        "tpl/virtualservices.yaml.j2: unknown template: a templates directory holds gateway.yaml.j2, destinationrule.yaml.j2 and virtualservice.yaml.j2 (rename or remove this file)",
    );
}

#[test]
fn missing_templates_dir() {
    assert_msg(
        flags_fail("discounts --versions v1 --templates nowhere"),
        "reading templates: nowhere: No such file or directory (os error 2)",
    );
}

// === usage ===

#[test]
fn usage_error_exits_2() {
    let out = meshctl()
        .args(["render", "--wieght", "v1=100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: unexpected argument '--wieght' found\n\n  tip: a similar argument exists: '--weight'"),
        "{stderr}"
    );
}
