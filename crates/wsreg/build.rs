//! Rebuilds the binary when the embedded page or the browser library changes, including
//! files added to their folders (the embedding macro alone only notices edited files).

fn main() {
    println!("cargo::rerun-if-changed=assets");
    println!("cargo::rerun-if-changed=../../packages/wsreg-client");
}
