/// The greeting, from the environment at compile time if set.
pub fn greeting() -> &'static str {
    option_env!("KACHE_FIXTURE_GREETING").unwrap_or("hello")
}
