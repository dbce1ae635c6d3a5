//! Serves a `spin.toml` app with the test host, like `spin up`, so curl and load generators
//! can drive it:
//!
//! ```text
//! cargo run -p cart-tests --release --bin spin-test-host -- \
//!     --manifest spin.toml --listen 127.0.0.1:3000 [--variable k=v]... [--quiet]
//! ```
//!
//! Prints the listening address and the routes, then serves until killed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cart_tests::{AppOptions, GuestOutput, SpinApp};

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    variables: HashMap<String, String>,
    quiet: bool,
}

const USAGE: &str = "usage: spin-test-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--variable name=value]... [--quiet]";

fn parse_args() -> Result<Args> {
    let mut args = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        variables: HashMap::new(),
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--manifest" | "-f" => args.manifest = PathBuf::from(value("--manifest")?),
            "--listen" => {
                let v = value("--listen")?;
                args.listen = v
                    .parse()
                    .with_context(|| format!("--listen {v:?} is not an address"))?;
            }
            "--variable" => {
                let v = value("--variable")?;
                let (k, val) = v
                    .split_once('=')
                    .with_context(|| format!("--variable {v:?} is not name=value"))?;
                args.variables.insert(k.to_string(), val.to_string());
            }
            // Component output would be measured by load tests; --quiet drops it.
            "--quiet" | "-q" => args.quiet = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let options = AppOptions {
        variables: args.variables,
        guest_output: if args.quiet {
            GuestOutput::Discard
        } else {
            GuestOutput::Inherit
        },
        ..AppOptions::default()
    };
    let app = SpinApp::load(&args.manifest, options)
        .with_context(|| format!("cannot load {}", args.manifest.display()))?;
    let routes: Vec<(String, String)> = app.routes().to_vec();
    let server = app.serve(args.listen)?;
    println!("Serving http://{}", server.local_addr());
    println!("Available Routes:");
    for (route, component) in routes {
        println!("  {component}: http://{}{route}", server.local_addr());
    }
    server.wait();
    Ok(())
}
