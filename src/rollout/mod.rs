//! The rollout: a pure state machine ([`machine`]), the analysis of one
//! window ([`analysis`]), the anytime-valid evidence accumulated over the
//! whole rollout ([`sequential`]), the state stored on the VirtualService
//! ([`state`]), how the new version gets traffic (`canary`, `ab`, `mirror`,
//! `bluegreen`: [`strategy`]), route weights, match routes and mirrors
//! ([`routes`]), `--interval auto` bake times ([`pace`]), webhooks
//! ([`webhook`]) and the async driver that runs it all against a target and
//! a metrics source ([`engine`]).

pub mod analysis;
pub mod engine;
pub mod machine;
pub mod pace;
pub mod routes;
pub mod sequential;
pub mod state;
pub mod sticky;
pub mod strategy;
pub mod webhook;
