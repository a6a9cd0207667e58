//! API tests against a real server on a random port.

mod conventions;
mod datasets;
mod deployments;
mod helpers;
mod registry;
mod tenancy;
