//! A simulator of the upstream OQS with a deterministic synthetic population.
