fn main() { println!("ferrumq-operator {}", env!("CARGO_PKG_VERSION")); }
