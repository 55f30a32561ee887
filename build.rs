fn main() {
    // Linker settings for a Node addon; only the addon (the `node` feature) needs them.
    #[cfg(feature = "node")]
    napi_build::setup();
}
