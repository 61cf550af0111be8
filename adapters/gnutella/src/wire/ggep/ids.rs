//! Well-known extension ids.

/// Hash (type + digest).
pub const H: &str = "H";
/// URN text without `urn:`.
pub const U: &str = "u";
/// Alternate locations.
pub const ALT: &str = "ALT";
/// Large file size.
pub const LF: &str = "LF";
/// Push proxies.
pub const PUSH: &str = "PUSH";
/// Packed IPv4:port hosts.
pub const IPP: &str = "IPP";
/// Support cached pongs (asks for IPP).
pub const SCP: &str = "SCP";
/// UDP host cache.
pub const UDPHC: &str = "UDPHC";
/// Daily uptime.
pub const DU: &str = "DU";
/// Vendor code.
pub const VC: &str = "VC";
/// Ultrapeer slots.
pub const UP: &str = "UP";
/// Tiger tree root.
pub const TT: &str = "TT";
/// Creation time.
pub const CT: &str = "CT";
/// Browse host supported.
pub const BH: &str = "BH";
/// gtk-gnutella version.
pub const GTKGV: &str = "GTKGV";
/// gtk-gnutella IPv6 (kept opaque).
pub const GTKG_IPV6: &str = "GTKG.IPV6";
/// Partial results accepted (Query).
pub const PR: &str = "PR";
