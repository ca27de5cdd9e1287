//! One integration test binary (one link, shared helpers): each module starts the real
//! application on a temp dir and talks to it as a client would.

mod auth;
mod chat;
mod connections;
mod contract;
mod headers;
mod helpers;
mod hygiene;
mod media;
mod metrics;
mod ops;
mod socketio_js;
mod sockets;
mod team;
mod tenancy;
mod web;
mod webhooks;
mod whatsapp;
mod workflow;
