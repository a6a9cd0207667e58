//! API tests against a real server on a random port.

mod ab_tests;
mod conventions;
mod datasets;
mod deployments;
mod experiments;
mod helpers;
mod monitoring;
mod receivers;
mod registry;
mod retraining;
mod tenancy;
