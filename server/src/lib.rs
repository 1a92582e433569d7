//! Slipway's server: the orchestrator that carries workloads through their stages,
//! the process runtime, the log pipeline, the event log, the store, and the gRPC API.
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod config;
pub mod data_files;
pub mod domain;
pub mod events;
pub mod fleet;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod orchestrator;
pub mod rest;
pub mod runtime;
pub mod server;
mod serving;
pub mod store;
pub mod transport;
