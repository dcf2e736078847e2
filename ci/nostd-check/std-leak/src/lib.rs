//! Uses std on purpose (see `Cargo.toml`).

/// Allocates through std.
pub fn leak() -> std::string::String {
    std::format!("{}", std::process::id())
}
