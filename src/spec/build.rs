//! Stage two: flags over the file, then the cross-field rules (weights
//! name known versions, a gateway needs hosts, ...), giving the validated
//! [`ServiceSpec`]; and the flag overlays of `rollout start` and `analyze`
//! over [`RolloutDefaults`].

use super::flags::Interval;
use super::*;

pub(super) fn build(
    raw: RawSpec,
    file: FileCtx<'_>,
    args: &SpecArgs,
    namespace_flag: Option<&str>,
) -> Result<ServiceSpec, SpecError> {
    let SpecArgs {
        service: service_flag,
        file: _,
        hosts: host_flags,
        gateway: gateway_flag,
        port: port_flag,
        versions: version_flags,
        weights: weight_flags,
        templates: _,
        istio_api: istio_api_flag,
        sticky_cookie: sticky_cookie_flag,
    } = args;
    let RawSpec {
        service,
        namespace,
        hosts,
        gateway,
        port,
        versions,
        weights,
        istio_api,
        rollout,
        metrics,
        webhooks,
        sticky_cookie,
    } = raw;
    let in_file = file.path.is_some();

    let service = match service_flag {
        Some(s) => {
            s.parse::<Label>()
                .map_err(|m| flag_error("SERVICE", s, m))?
                .0
        }
        None => match service {
            Some(s) => s.0,
            None if in_file => {
                return Err(file.invalid(
                    &[],
                    "no service name: add `service: NAME` to the file or pass SERVICE (e.g. `meshctl render discounts`)",
                ));
            }
            None => {
                return Err(flag_error(
                    "SERVICE",
                    "",
                    "no service name: pass SERVICE (e.g. `meshctl render discounts --versions v1,v2`) or write it in meshctl.yaml (`-f FILE`)",
                ));
            }
        },
    };

    let namespace = match namespace_flag {
        Some(ns) => Some(
            ns.parse::<Label>()
                .map_err(|m| flag_error("--namespace", ns, m))?
                .0,
        ),
        None => namespace.map(|n| n.0),
    };

    let hosts: Vec<String> = if host_flags.is_empty() {
        hosts.into_iter().map(|h| h.0).collect()
    } else {
        let mut out = Vec::new();
        for h in host_flags {
            let h = h.parse::<Host>().map_err(|m| flag_error("--host", h, m))?.0;
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    };
    let mut seen_hosts = BTreeSet::new();
    for h in &hosts {
        if !seen_hosts.insert(h.to_ascii_lowercase()) {
            return Err(file.invalid(
                &["hosts"],
                format!("host {h:?} is listed twice: list each host once"),
            ));
        }
    }

    let gateway = build_gateway(&service, &hosts, gateway, gateway_flag.as_deref(), file)?;

    let port = match port_flag {
        Some(p) => Some(
            port_from_u64(u64::from(*p))
                .map_err(|m| flag_error("--port", &p.to_string(), m))?
                .0,
        ),
        None => port.map(|p| p.0),
    };

    let file_versions = versions.map(|v| v.0).unwrap_or_default();
    let versions: Vec<VersionSpec> = if version_flags.is_empty() {
        file_versions
            .into_iter()
            .map(|(name, labels)| version_spec(name, labels))
            .collect()
    } else {
        let mut out: Vec<VersionSpec> = Vec::new();
        for v in version_flags {
            let name: Version = v
                .trim()
                .parse()
                .map_err(|e| flag_error("--versions", v, e))?;
            if out.iter().any(|s| s.name == name) {
                return Err(flag_error(
                    "--versions",
                    v,
                    format!(
                        "version {:?} is given twice: each version needs its own name",
                        name.as_str()
                    ),
                ));
            }
            // A version the file also lists keeps the file's labels.
            let labels = file_versions
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, l)| l.clone());
            out.push(version_spec(name, labels));
        }
        out
    };
    if versions.is_empty() {
        let message = "no versions: list them, stable first, with `versions: [v1, v2]` in meshctl.yaml or `--versions v1,v2`";
        return Err(if in_file {
            file.invalid(&[], message)
        } else {
            flag_error("--versions", "", message)
        });
    }
    let known = || {
        versions
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    let weights = if weight_flags.is_empty() {
        match weights {
            Some(RawWeights(split)) => {
                for (v, _) in split.pairs() {
                    if !versions.iter().any(|s| &s.name == v) {
                        return Err(file.invalid(
                            &["weights", v.as_str()],
                            format!(
                                "version {:?} is not one of the versions ({}): add it to `versions` or remove its weight",
                                v.as_str(),
                                known()
                            ),
                        ));
                    }
                }
                split
            }
            None => Split::all_to(versions[0].name.clone()),
        }
    } else {
        let split = Split::parse_pairs(weight_flags)
            .map_err(|e| flag_error("--weight", &weight_flags.join(" "), split_fix(&e)))?;
        for (v, _) in split.pairs() {
            if !versions.iter().any(|s| &s.name == v) {
                return Err(flag_error(
                    "--weight",
                    &weight_flags.join(" "),
                    format!(
                        "version {:?} is not one of the versions ({}): add it to the versions or remove its weight",
                        v.as_str(),
                        known()
                    ),
                ));
            }
        }
        split
    };

    let istio_api = match istio_api_flag {
        Some(s) => parse_istio_api(s).map_err(|m| flag_error("--istio-api", s, m))?,
        None => istio_api.map_or(ApiVersion::V1, ApiVersion::from),
    };

    let rollout = build_rollout(rollout.unwrap_or_default(), file)?;

    let metrics = match metrics {
        None => None,
        Some(RawMetrics {
            proxy: Some(_),
            prometheus: Some(_),
        }) => {
            return Err(file.invalid(
                &["metrics"],
                "both `proxy` and `prometheus` are set: choose one metrics source",
            ));
        }
        Some(RawMetrics {
            proxy: Some(u),
            prometheus: None,
        }) => Some(Endpoint::Proxy(u.0)),
        Some(RawMetrics {
            proxy: None,
            prometheus: Some(u),
        }) => Some(Endpoint::Prometheus(u.0)),
        Some(RawMetrics {
            proxy: None,
            prometheus: None,
        }) => {
            return Err(file.invalid(
                &["metrics"],
                "no metrics source: set `proxy: URL` (meshproxy's /metrics) or `prometheus: URL`",
            ));
        }
    };

    let mut names = BTreeSet::new();
    let mut hooks = Vec::new();
    for w in webhooks {
        if !names.insert(w.name.0.clone()) {
            return Err(file.invalid(
                &["webhooks"],
                format!(
                    "webhook name {:?} is used twice: give each webhook its own name",
                    w.name.0
                ),
            ));
        }
        hooks.push(Webhook {
            name: w.name.0,
            kind: w.kind,
            url: w.url.0,
            timeout: w.timeout.map_or(Duration::from_secs(10), |d| d.0),
        });
    }

    Ok(ServiceSpec {
        service,
        namespace,
        hosts,
        gateway,
        port,
        versions,
        weights,
        istio_api,
        rollout,
        metrics,
        webhooks: hooks,
        source: file.path.map(Path::to_owned),
        sticky_cookie: match sticky_cookie_flag {
            Some(_) => sticky_flag(args)?,
            None => sticky_cookie.map(|c| c.0),
        },
    })
}

/// `--sticky-cookie NAME`, validated as a cookie name.
pub fn sticky_flag(args: &SpecArgs) -> Result<Option<CookieName>, SpecError> {
    args.sticky_cookie
        .as_deref()
        .map(|v| {
            v.parse::<CookieName>()
                .map_err(|e| flag_error("--sticky-cookie", v, e))
        })
        .transpose()
}

pub(super) fn version_spec(name: Version, labels: Option<Labels>) -> VersionSpec {
    let labels = match labels {
        Some(l) if !l.0.is_empty() => l.0,
        _ => BTreeMap::from([("version".to_owned(), name.as_str().to_owned())]),
    };
    VersionSpec { name, labels }
}

pub(super) fn build_gateway(
    service: &str,
    hosts: &[String],
    raw: Option<RawGateway>,
    name_flag: Option<&str>,
    file: FileCtx<'_>,
) -> Result<Option<GatewaySpec>, SpecError> {
    if hosts.is_empty() {
        if let Some(n) = name_flag {
            return Err(flag_error(
                "--gateway",
                n,
                "a gateway needs external hosts: add --host (e.g. --host discounts.example.com)",
            ));
        }
        if raw.is_some() {
            return Err(file.invalid(
                &["gateway"],
                "a gateway needs external hosts: add `hosts: [discounts.example.com]` or remove `gateway`",
            ));
        }
        return Ok(None);
    }
    let RawGateway {
        name,
        port,
        tls,
        selector,
    } = raw.unwrap_or_default();
    let name = match name_flag {
        Some(n) => {
            n.parse::<Subdomain>()
                .map_err(|m| flag_error("--gateway", n, m))?
                .0
        }
        None => name.map_or_else(|| format!("{service}-gateway"), |n| n.0),
    };
    let tls = tls.map(|t| GatewayTls {
        credential_name: t.credential_name.0,
    });
    let default_port = if tls.is_some() { 443 } else { 80 };
    let port = port.map_or(
        NonZeroU16::new(default_port).expect("non-zero constant"),
        |p| p.0,
    );
    let selector = match selector {
        Some(s) if !s.0.is_empty() => s.0,
        Some(_) => {
            return Err(file.invalid(
                &["gateway", "selector"],
                "an empty selector matches no gateway pods: give labels (e.g. {istio: ingressgateway}) or remove `selector`",
            ));
        }
        None => BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]),
    };
    Ok(Some(GatewaySpec {
        name,
        port,
        tls,
        selector,
    }))
}

pub(super) fn build_rollout(
    raw: RawRollout,
    file: FileCtx<'_>,
) -> Result<RolloutDefaults, SpecError> {
    let RawRollout {
        steps,
        step_weight,
        max_weight,
        interval,
        threshold,
        success_rate,
        max_p99,
        min_requests,
        analysis,
        confidence,
        timeout,
        manual_promotion,
        on_interrupt,
        grpc_error_codes,
    } = raw;
    let d = RolloutDefaults::default();
    let steps = match (steps, step_weight, max_weight) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(file.invalid(
                &["rollout", "steps"],
                "`steps` and `stepWeight`/`maxWeight` both describe the steps: keep one",
            ));
        }
        (Some(steps), None, None) => {
            let steps: Vec<Weight> = steps.into_iter().map(|w| w.0).collect();
            check_steps(&steps).map_err(|m| file.invalid(&["rollout", "steps"], m))?;
            steps
        }
        (None, Some(WeightValue(step)), max) => {
            let max = max.map_or(Weight::FULL, |w| w.0);
            step_weights(step, max).map_err(|m| file.invalid(&["rollout", "stepWeight"], m))?
        }
        (None, None, Some(_)) => {
            return Err(file.invalid(
                &["rollout", "maxWeight"],
                "`maxWeight` needs `stepWeight` (e.g. stepWeight: 10, maxWeight: 50)",
            ));
        }
        (None, None, None) => d.steps,
    };
    let positive = |v: Option<DurationValue>, key: &str, default: Duration| match v {
        Some(DurationValue(d)) if d.is_zero() => Err(file.invalid(
            &["rollout", key],
            format!("`{key}` must be longer than zero (e.g. \"30s\")"),
        )),
        Some(DurationValue(d)) => Ok(d),
        None => Ok(default),
    };
    let (interval, auto_interval) = match interval {
        Some(IntervalValue::Auto) => (None, true),
        Some(IntervalValue::Every(v)) => (Some(v), false),
        None => (None, d.auto_interval),
    };
    Ok(RolloutDefaults {
        steps,
        interval: positive(interval, "interval", d.interval)?,
        auto_interval,
        threshold: threshold.unwrap_or(d.threshold),
        success_rate: success_rate.map_or(d.success_rate, |p| p.0),
        max_p99: positive(max_p99, "maxP99", d.max_p99)?,
        min_requests: min_requests.unwrap_or(d.min_requests),
        analysis: analysis.unwrap_or(d.analysis),
        confidence: match confidence {
            Some(Percent(c)) if c <= 0.0 || c >= 100.0 => {
                return Err(file.invalid(
                    &["rollout", "confidence"],
                    format!("{c} leaves no room for doubt or no confidence: use a percentage between 0 and 100 (e.g. 99)"),
                ));
            }
            Some(Percent(c)) => Some(c / 100.0),
            None => d.confidence,
        },
        timeout: positive(timeout, "timeout", d.timeout)?,
        manual_promotion: manual_promotion.unwrap_or(d.manual_promotion),
        on_interrupt: on_interrupt.unwrap_or(d.on_interrupt),
        grpc_error_codes: grpc_error_codes.map_or(d.grpc_error_codes, |c| c.0),
    })
}

/// Checks canary step weights: not empty, each 1..=100, strictly increasing.
pub fn check_steps(steps: &[Weight]) -> Result<(), String> {
    if steps.is_empty() {
        return Err("no steps: list canary weights, e.g. [10, 25, 50, 100]".into());
    }
    if steps.contains(&Weight::ZERO) {
        return Err("a step of 0 sends no traffic to the canary: use weights from 1 to 100".into());
    }
    if let Some(w) = steps.windows(2).find(|w| w[1] <= w[0]) {
        return Err(format!(
            "steps must increase: {} comes after {} (e.g. [10, 25, 50, 100])",
            w[1], w[0]
        ));
    }
    Ok(())
}

/// Expands `stepWeight`/`maxWeight` into the step list: `step, 2×step, …`
/// while at most `max`.
pub fn step_weights(step: Weight, max: Weight) -> Result<Vec<Weight>, String> {
    if step == Weight::ZERO {
        return Err("`stepWeight` must be from 1 to 100".into());
    }
    if step > max {
        return Err(format!(
            "`stepWeight` {step} is above `maxWeight` {max}: the first step would pass the last"
        ));
    }
    Ok((1..)
        .map(|i| u32::from(step.get()) * i)
        .take_while(|w| *w <= u32::from(max.get()))
        .map(|w| Weight::try_from(w).expect("at most max, so at most 100"))
        .collect())
}

// === impl RolloutDefaults ===

impl RolloutDefaults {
    /// Replaces defaults with the flags of `meshctl rollout start` that are
    /// given (`--steps` or `--step-weight`/`--max-weight`, `--interval`,
    /// `--threshold`, `--success-rate`, `--max-p99`, `--min-requests`,
    /// `--timeout`, `--manual-promotion`, `--on-interrupt`). Errors name the flag.
    pub fn apply_flags(&mut self, args: &RolloutStartArgs) -> Result<(), SpecError> {
        let RolloutStartArgs {
            steps,
            step_weight,
            max_weight,
            analysis,
            manual_promotion,
            on_interrupt,
            timeout,
            ..
        } = args;
        self.apply_analysis_flags(analysis)?;
        let weight = |flag: &str, w: u8| {
            Weight::try_from(w).map_err(|e| flag_error(flag, &w.to_string(), e))
        };
        if !steps.is_empty() {
            let joined = steps
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let parsed = steps
                .iter()
                .map(|w| weight("--steps", *w))
                .collect::<Result<Vec<_>, _>>()?;
            check_steps(&parsed).map_err(|m| flag_error("--steps", &joined, m))?;
            self.steps = parsed;
        } else if let Some(step) = step_weight {
            let step = weight("--step-weight", *step)?;
            let max = max_weight.map_or(Ok(Weight::FULL), |m| weight("--max-weight", m))?;
            self.steps = step_weights(step, max)
                .map_err(|m| flag_error("--step-weight", &step.to_string(), m))?;
        } else if let Some(max) = max_weight {
            return Err(flag_error(
                "--max-weight",
                &max.to_string(),
                "--max-weight needs --step-weight (e.g. --step-weight 10 --max-weight 50)",
            ));
        }
        if let Some(t) = timeout {
            self.timeout = *t;
        }
        if *manual_promotion {
            self.manual_promotion = true;
        }
        if let Some(o) = on_interrupt {
            self.on_interrupt = (*o).into();
        }
        Ok(())
    }

    /// Lets the analysis flags (`--interval`, `--threshold`, `--success-rate`,
    /// `--max-p99`, `--min-requests`, `--grpc-error-codes`) replace these defaults; shared by
    /// `rollout start` and `analyze` so both accept and reject the same values.
    pub fn apply_analysis_flags(&mut self, analysis: &AnalysisArgs) -> Result<(), SpecError> {
        let AnalysisArgs {
            interval,
            threshold,
            thresholds:
                ThresholdArgs {
                    success_rate,
                    max_p99,
                    min_requests,
                    grpc_error_codes,
                    analysis: rule,
                    confidence,
                },
            metrics: _,
            prometheus: _,
        } = analysis;
        match interval {
            Some(Interval::Every(d)) => {
                // A fixed --interval overrides `interval: auto` in the file.
                self.interval = *d;
                self.auto_interval = false;
            }
            Some(Interval::Auto) => self.auto_interval = true,
            None => {}
        }
        if let Some(d) = max_p99 {
            self.max_p99 = *d;
        }
        if let Some(t) = threshold {
            self.threshold = *t;
        }
        if let Some(r) = success_rate {
            if !(0.0..=100.0).contains(r) {
                return Err(flag_error(
                    "--success-rate",
                    &r.to_string(),
                    "out of range: use a percentage from 0 to 100 (e.g. 99.5)",
                ));
            }
            self.success_rate = *r;
        }
        if let Some(n) = min_requests {
            self.min_requests = *n;
        }
        if let Some(v) = grpc_error_codes {
            self.grpc_error_codes = v
                .parse()
                .map_err(|e| flag_error("--grpc-error-codes", v, e))?;
        }
        if let Some(r) = rule {
            self.analysis = (*r).into();
        }
        if let Some(c) = confidence {
            if !(*c > 0.0 && *c < 100.0) {
                return Err(flag_error(
                    "--confidence",
                    &c.to_string(),
                    "out of range: use a percentage between 0 and 100 (e.g. 99)",
                ));
            }
            self.confidence = Some(c / 100.0);
        }
        Ok(())
    }
}

/// The metrics source from `--metrics URL` / `--prometheus URL`, when given
/// (they replace the file's `metrics`).
pub fn metrics_flag(args: &AnalysisArgs) -> Result<Option<Endpoint>, SpecError> {
    let parse = |flag: &str, v: &str| {
        v.parse::<HttpUrl>()
            .map(|u| u.0)
            .map_err(|m| flag_error(flag, v, m))
    };
    Ok(match (&args.metrics, &args.prometheus) {
        (Some(u), _) => Some(Endpoint::Proxy(parse("--metrics", u)?)),
        (None, Some(u)) => Some(Endpoint::Prometheus(parse("--prometheus", u)?)),
        (None, None) => None,
    })
}
