//! The build script every Lambda function shares: how its release binary is linked.
//!
//! Release builds abort on panic (`[profile.release]`), so no frame is ever unwound and the
//! unwind tables (`.eh_frame`, about a megabyte of each function) are dead weight: they are
//! discarded at link time (`lambda.ld`). A panic still prints its message and aborts. Debug and
//! test builds unwind, and keep them. (A build script cannot see the profile's `panic` setting:
//! `CARGO_CFG_PANIC` is the target's default. Were a release build made to unwind, a panic would
//! find no tables and abort, which is what the release profile does anyway.)

fn main() {
    println!("cargo::rerun-if-changed=../lambda.ld");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("PROFILE") != "release" || var("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    let script = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("../lambda.ld");
    println!("cargo::rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
    println!("cargo::rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
