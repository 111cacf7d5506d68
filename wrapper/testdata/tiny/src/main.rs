fn main() {
    println!("tiny says {}", tiny::word());
}
