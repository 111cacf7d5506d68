use macros::Named;

#[derive(Named)]
struct Fixture;

fn main() {
    let r = corelib::report("kache caches 42 crates").expect("report");
    println!("{} {} {} {}", Fixture::name(), corelib::greeting(), corelib::FEATURE, r);
}
