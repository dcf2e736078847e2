//! `lbd`: the lbcore daemon (placeholder until the VRRP runner lands).
fn main() {
    eprintln!("lbd: not yet runnable");
    std::process::exit(2);
}
