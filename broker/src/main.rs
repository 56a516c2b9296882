fn main() {
    println!("ferrumq-broker {}", env!("CARGO_PKG_VERSION"));
}
