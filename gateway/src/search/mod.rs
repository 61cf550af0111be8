//! The search hub: plan per network, fan out with deadlines, merge, rank, cache.

mod cache;
mod hub;
mod merge;
mod plan;

pub use cache::ResultCache;
pub use hub::{Progress, ProgressState, SearchEvent, SearchHub, SearchParams};
pub use merge::{Availability, Item, Merged, Merger};
pub use plan::{SearchPlan, plan};
