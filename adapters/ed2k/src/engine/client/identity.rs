//! What Junction's client says about itself, in the hello to a peer and in the login to an
//! eD2k server alike. Its own module so that the peer connections (`peer`) and the server
//! session (`server_session`) both read it without importing each other.

/// Our eMule version tag: compatible-client id (Junction has none assigned), 0.50.0
/// (`id << 24 | major << 17 | minor << 10 | update << 7`).
pub(crate) fn emule_version() -> u32 {
    (0x4A << 24) | (50 << 10)
}
