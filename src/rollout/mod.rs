//! The rollout: a pure state machine ([`machine`]), the analysis of one
//! window ([`analysis`]) at a [`time::Timestamp`], the anytime-valid
//! evidence accumulated over the whole rollout ([`sequential`]), the state
//! stored on the VirtualService
//! ([`state`]), how the new version gets traffic (`canary`, `ab`, `mirror`,
//! `bluegreen`: [`strategy`]), the state written as route weights, match
//! routes and mirrors ([`routes`], over [`crate::routing`]), `--interval
//! auto` bake times ([`pace`]), webhooks
//! ([`webhook`]) and the async driver that runs it all against a target and
//! a metrics source ([`engine`]); one window judged on live traffic without
//! a rollout, `meshctl analyze`'s gate ([`gate`]).

pub mod analysis;
pub mod engine;
pub mod finish;
pub mod gate;
pub mod machine;
pub mod pace;
pub mod routes;
pub mod sequential;
pub mod state;
pub mod strategy;
pub mod time;
pub mod webhook;
