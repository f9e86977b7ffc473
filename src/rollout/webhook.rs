//! Rollout webhooks, as Flagger users expect them: a JSON POST to a URL at
//! fixed points of the rollout, each bounded by a timeout.
//!
//! | hook | when | non-2xx / unreachable |
//! |---|---|---|
//! | `pre-rollout` | before the first weight change | the rollout does not start (exit 1), nothing is changed |
//! | `rollout` | before each analysis (a gate) | the window counts as a failed check, with the answer as the reason |
//! | `post-rollout` | after promotion or rollback | logged and reported; the outcome stands |
//! | `rollback` | after a rollback | logged and reported; the outcome stands |

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Webhook URLs (all optional) and their timeout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Webhooks {
    /// Called once before the rollout starts.
    pub pre_rollout: Option<String>,
    /// Called before each analysis; a non-2xx answer fails the check.
    pub rollout: Option<String>,
    /// Called after the rollout finished (promoted or rolled back).
    pub post_rollout: Option<String>,
    /// Called after a rollback.
    pub rollback: Option<String>,
    /// Timeout per call (default 10 s).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub timeout: Option<Duration>,
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option, reason = "serde's `with` passes &Option")]
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    /// Before the rollout.
    PreRollout,
    /// Before each analysis.
    Rollout,
    /// After the rollout.
    PostRollout,
    /// After a rollback.
    Rollback,
}

/// The JSON body of every webhook call.
#[derive(Clone, Debug, Serialize)]
pub struct Payload<'a> {
    /// Which hook.
    pub hook: Hook,
    /// Service.
    pub service: &'a str,
    /// Stable version.
    pub from: &'a str,
    /// New version.
    pub to: &'a str,
    /// Phase (`Progressing`, `Promoted`, ...).
    pub phase: String,
    /// Current step (0-based).
    pub step: usize,
    /// Current canary weight.
    pub weight: u8,
    /// Why (for post-rollout / rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// A webhook that did not answer 2xx.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Connection failed or timed out.
    #[error("{hook:?} webhook {url} is unreachable: {source}")]
    Unreachable {
        /// Hook.
        hook: Hook,
        /// URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx answer.
    #[error("{hook:?} webhook {url} answered HTTP {status}: {body}")]
    Rejected {
        /// Hook.
        hook: Hook,
        /// URL.
        url: String,
        /// Status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

// === impl Webhooks ===

impl Webhooks {
    /// The URL for a hook.
    pub fn url(&self, hook: Hook) -> Option<&str> {
        match hook {
            Hook::PreRollout => self.pre_rollout.as_deref(),
            Hook::Rollout => self.rollout.as_deref(),
            Hook::PostRollout => self.post_rollout.as_deref(),
            Hook::Rollback => self.rollback.as_deref(),
        }
    }

    /// Calls the hook if configured; `Ok(false)` when it is not.
    pub async fn call(&self, payload: &Payload<'_>) -> Result<bool, WebhookError> {
        let Some(url) = self.url(payload.hook) else {
            return Ok(false);
        };
        let hook = payload.hook;
        let timeout = self.timeout.unwrap_or(Duration::from_secs(10));
        let unreachable = |source| WebhookError::Unreachable {
            hook,
            url: url.to_owned(),
            source,
        };
        let client = crate::metrics::http_client(timeout).map_err(unreachable)?;
        let resp = client
            .post(url)
            .json(payload)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(true);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(WebhookError::Rejected {
            hook,
            url: url.to_owned(),
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        })
    }
}
