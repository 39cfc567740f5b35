//! The REST API through a real server on a loopback port, over a real database.

mod connections;
mod data;
mod errors;
mod hardening;
mod management;
mod mcp;
mod openapi;
mod operations;
mod pipeline;
mod relay;
mod security;
mod stats;
mod substitution;
mod support;
mod tool_search;
