//! A/B tests inside the serving layer: weighted, sticky assignment of requests to variants, success
//! metrics from labels or outcomes, and the statistics that say which variant is better.
