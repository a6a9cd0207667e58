//! A/B tests between model variants: configuration, assignment counts and business outcomes.
