//! Writes the specs generated from the Rust types and template.yaml to `specs/`.

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let template = realtime_local::template::Template::parse(realtime_local::stack::TEMPLATE)?;
    let dir = root.join("specs");
    std::fs::create_dir_all(&dir)?;
    for (name, body) in realtime_local::specs::generate(&template) {
        std::fs::write(dir.join(name), body)?;
        println!("wrote specs/{name}");
    }
    Ok(())
}
