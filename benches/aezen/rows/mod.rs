//! The rows, grouped by the set-up they share; each group writes its lines into the report.

pub(crate) mod connections;
pub(crate) mod inbox;
pub(crate) mod ingest;
pub(crate) mod logins;
pub(crate) mod many_tenants;
pub(crate) mod media;
pub(crate) mod operations;
pub(crate) mod real_clients;
pub(crate) mod webhooks;
pub(crate) mod workflow;
