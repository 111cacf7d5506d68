//! The small fixture of the key-input tests: one lib, one bin, no deps.
pub fn word() -> String {
    let w = option_env!("KACHE_TINY_WORD").unwrap_or("quiet");
    if cfg!(feature = "loud") {
        w.to_uppercase()
    } else if cfg!(kache_flag) {
        format!("{w}-flagged")
    } else {
        w.to_string()
    }
}
