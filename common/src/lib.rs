//! zdsync core: the artifact model, the sync rules, and (as they land) the API clients, the
//! artifact store and the stages. See `docs/ARCHITECTURE.md`.

pub mod model;
pub mod salesforce;
