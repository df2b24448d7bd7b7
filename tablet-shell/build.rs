//! Compiles the kiosk's `.slint` screens when the `ui` feature is on.

fn main() {
    #[cfg(feature = "ui")]
    {
        // Debug info lets the UI tests find elements by id; it costs nothing at run time
        // beyond a few strings.
        let config =
            slint_build::CompilerConfiguration::new().with_style("fluent".into()).with_debug_info(true);
        if let Err(err) = slint_build::compile_with_config("ui/app.slint", config) {
            eprintln!("compiling ui/app.slint: {err}");
            std::process::exit(1);
        }
    }
}
