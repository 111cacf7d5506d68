use std::{env, fs, path::Path};

fn main() {
    let out = env::var("OUT_DIR").unwrap();
    let table = fs::read_to_string("table.txt").unwrap();
    let n = table.lines().count();
    fs::write(Path::new(&out).join("generated.rs"), format!("pub const TABLE_LINES: usize = {};\n", n)).unwrap();
    println!("cargo:rerun-if-changed=table.txt");
    println!("cargo:rustc-cfg=corelib_built");
}
