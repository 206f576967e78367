//! Test component: a plain WASI command. It is a valid component of another
//! world, so loading it as a plugin must fail and say so.

fn main() {
    println!("hello from a command component");
}
