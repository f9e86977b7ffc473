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

use serde::Serialize;

/// One configured webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Name, used in events and errors.
    pub name: String,
    /// When it is called.
    pub hook: Hook,
    /// Where to POST.
    pub url: String,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

/// The webhooks of a rollout, in spec order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Webhooks {
    /// Every configured webhook.
    pub hooks: Vec<WebhookConfig>,
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
    #[error("{hook:?} webhook {name:?} ({url}) is unreachable: {source}")]
    Unreachable {
        /// Hook.
        hook: Hook,
        /// Webhook name.
        name: String,
        /// URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx answer.
    #[error("{hook:?} webhook {name:?} ({url}) answered HTTP {status}: {body}")]
    Rejected {
        /// Hook.
        hook: Hook,
        /// Webhook name.
        name: String,
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
    /// Calls every webhook of `payload.hook` in order; stops at the first
    /// failure. `Ok(n)`: how many were called.
    pub async fn call(&self, payload: &Payload<'_>) -> Result<usize, WebhookError> {
        let mut n = 0;
        for h in self.hooks.iter().filter(|h| h.hook == payload.hook) {
            call_one(h, payload).await?;
            n += 1;
        }
        Ok(n)
    }
}

async fn call_one(h: &WebhookConfig, payload: &Payload<'_>) -> Result<(), WebhookError> {
    let hook = payload.hook;
    let unreachable = |source| WebhookError::Unreachable {
        hook,
        name: h.name.clone(),
        url: h.url.clone(),
        source,
    };
    let client = crate::metrics::http_client(h.timeout).map_err(unreachable)?;
    let resp = client
        .post(&h.url)
        .json(payload)
        .send()
        .await
        .map_err(unreachable)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(WebhookError::Rejected {
        hook,
        name: h.name.clone(),
        url: h.url.clone(),
        status: status.as_u16(),
        body: body.chars().take(200).collect(),
    })
}
