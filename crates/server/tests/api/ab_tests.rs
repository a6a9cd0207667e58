//! A/B tests through the real endpoint.
