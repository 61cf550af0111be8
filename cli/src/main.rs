//! `junction`: run the gateway, or talk to one over gRPC.

mod cat;
mod client;
mod config;
mod datadir;
mod lab;
mod output;
mod serve;
mod startup;
mod stream;
mod table;
mod term;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "junction",
    version,
    about = "One gateway to eD2k, Gnutella and BitTorrent"
)]
struct Cli {
    /// The gateway the client commands talk to (`http://` is assumed when no scheme is
    /// given). Not used by `serve` and `lab`.
    #[arg(
        long,
        global = true,
        env = "JUNCTION_SERVER",
        default_value = "http://127.0.0.1:4470",
        help_heading = "Client options"
    )]
    server: String,
    /// Bearer token: the one a gateway requires, or for `serve`, the one to require.
    #[arg(
        long,
        global = true,
        env = "JUNCTION_TOKEN",
        hide_env_values = true,
        help_heading = "Client options"
    )]
    token: Option<String>,
    /// CA certificate (PEM) to trust for an https:// server. Not used by `serve` and `lab`.
    #[arg(
        long,
        global = true,
        env = "JUNCTION_TLS_CA",
        help_heading = "Client options"
    )]
    tls_ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(serve::Args),
    /// Run a self-contained eD2k, Gnutella and BitTorrent world on 127.0.0.1 with a gateway
    /// attached, until Ctrl-C.
    Lab(lab::Args),
    /// Search every network: a table sorted by score on a terminal, lines in a pipe.
    Search {
        /// Words, "phrases", -exclude, OR, size>700MB, type:video, ext:mkv, net:ed2k, or a
        /// content id or link.
        query: String,
        /// Only these networks (comma-separated): ed2k, gnutella, bittorrent.
        #[arg(long, value_delimiter = ',')]
        net: Vec<String>,
        /// Per-network deadline in seconds.
        #[arg(long)]
        timeout: Option<u32>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Start a transfer from a search item id, a magnet:/ed2k:// link or a .torrent file.
    Get {
        /// A search item id, a magnet:/ed2k:// link, or a .torrent file.
        target: String,
        /// Wait for it to complete, with a progress bar.
        #[arg(long)]
        wait: bool,
        /// JSON instead of text, one object per line: the transfer as started, and with
        /// --wait the completed transfer after it.
        #[arg(long)]
        json: bool,
        /// Only these files of a multi-file torrent, by the numbers `junction files` shows
        /// (0,2,5); the others are left out.
        #[arg(long, value_delimiter = ',')]
        files: Vec<u32>,
    },
    /// List the files of a multi-file transfer, or choose which of them to fetch.
    Files {
        /// The transfer id, as `transfers` shows it.
        id: String,
        /// Fetch only these files (0,2,5); the others are left out.
        #[arg(long, value_delimiter = ',', conflicts_with = "all")]
        only: Vec<u32>,
        /// Fetch every file again.
        #[arg(long)]
        all: bool,
        /// One JSON object per file and line.
        #[arg(long)]
        json: bool,
    },
    /// List transfers.
    Transfers {
        /// Keep showing changes: a table redrawn in place on a terminal, lines otherwise.
        #[arg(long)]
        watch: bool,
        /// One JSON object per transfer and line.
        #[arg(long)]
        json: bool,
    },
    /// Pause a transfer.
    Pause {
        /// The transfer id, as `transfers` shows it.
        id: String,
    },
    /// Resume a transfer.
    Resume {
        /// The transfer id, as `transfers` shows it.
        id: String,
    },
    /// Cancel a transfer and delete its partial data.
    Cancel {
        /// The transfer id, as `transfers` shows it.
        id: String,
        /// Keep the partial file.
        #[arg(long)]
        keep_data: bool,
    },
    /// Write a transfer's verified bytes to stdout or a file, waiting for missing ones.
    Cat {
        /// A transfer id, or a magnet:/ed2k:// link or .torrent file (its transfer is started
        /// first, so the file streams while it downloads).
        target: String,
        /// First byte to read.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Bytes to read; 0 reads to the end.
        #[arg(long, default_value_t = 0)]
        length: u64,
        /// Write to this file (complete or not at all) with a progress bar; `-` writes to
        /// stdout even when it is a terminal and the bytes are binary.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the URL a media player streams a transfer from, or open a player on it.
    ///
    /// The URL is the gateway's HTTP front, /content/ID, and the second line its .m3u
    /// playlist; the transfer starts first if needed. With a token, the URLs carry it (as
    /// apikey=), since players cannot send headers.
    Stream {
        /// A transfer id, a search item id, a magnet:/ed2k:// link, a .torrent file, or a
        /// hash (btih:HEX, ed2k:HEX, sha1:HEX).
        target: String,
        /// Open the stream in $PLAYER, or mpv, and wait for it to end.
        #[arg(long)]
        play: bool,
        /// The gateway's HTTP fronts (address or URL); without it, the --server host on port
        /// 4480.
        #[arg(long, env = "JUNCTION_HTTP")]
        http: Option<String>,
        /// One JSON object: transfer_id, name, url, playlist.
        #[arg(long)]
        json: bool,
    },
    /// Show each network's state.
    Networks {
        /// One JSON object per network and line.
        #[arg(long)]
        json: bool,
    },
    /// Manage endpoints (servers, hosts, trackers, DHT nodes).
    Endpoint {
        #[command(subcommand)]
        action: EndpointAction,
    },
    /// Share a file or folder on every network.
    Share {
        /// A file or folder on the gateway's host.
        path: PathBuf,
    },
    /// Stop offering a shared file (or every shared file under a folder) and forget it.
    Unshare {
        /// A shared file or folder, as `junction shares` lists it.
        path: PathBuf,
    },
    /// List shared files.
    Shares {
        /// One JSON object per file and line.
        #[arg(long)]
        json: bool,
    },
    /// Print every link a transfer or a shared file has: ed2k://, magnet, and with
    /// --torrent the .torrent, to hand to a friend on any network.
    Links {
        /// A transfer id, or the path of a shared file.
        target: String,
        /// Also write the .torrent here.
        #[arg(long)]
        torrent: Option<PathBuf>,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g. `junction completions bash >
    /// ~/.local/share/bash-completion/completions/junction`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `junction man > ~/.local/share/man/man1/junction.1`.
    Man,
}

#[derive(Subcommand)]
enum EndpointAction {
    /// Add an eD2k server, a Gnutella host, a tracker URL or a DHT node.
    Add {
        /// ed2k, gnutella or bittorrent.
        network: String,
        /// host:port (a name or an IP) of a server, host or DHT node, or a tracker URL.
        address: String,
    },
    /// List the endpoints added with `endpoint add` (kept across restarts).
    List {
        /// One JSON object per endpoint and line.
        #[arg(long)]
        json: bool,
    },
    /// Forget an added endpoint, so a restart does not add it again.
    Remove {
        /// ed2k, gnutella or bittorrent.
        network: String,
        /// The address as `endpoint list` shows it.
        address: String,
    },
}

/// The command line, where `serve` and `lab` do not list the client options they ignore
/// (the options are global, so `junction search --server X` and `junction --server X
/// search` both work). `serve` has its own `--token`; the lab's gateway has none.
fn command_line() -> clap::Command {
    // A subcommand's own argument of the same name stops a global one from reaching it
    // (clap propagates a global only where the name is free): these take its place, hidden.
    let hidden = |id: &'static str, long: &'static str| {
        clap::Arg::new(id)
            .long(long)
            .hide(true)
            .value_name("IGNORED")
    };
    Cli::command()
        .mut_subcommand("serve", |c| {
            c.arg(hidden("server", "server"))
                .arg(hidden("tls_ca", "tls-ca"))
        })
        .mut_subcommand("lab", |c| {
            c.arg(hidden("server", "server"))
                .arg(hidden("tls_ca", "tls-ca"))
                .arg(hidden("token", "token"))
        })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match Cli::from_arg_matches(&command_line().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(e) = run(cli).await {
        // The reader went away (`| head`): that is how a pipe ends, not a failure.
        if term::is_broken_pipe(&e) {
            return std::process::ExitCode::SUCCESS;
        }
        if let Some(i) = e.downcast_ref::<term::Interrupted>() {
            eprintln!("\njunction: {i}");
            return std::process::ExitCode::from(130);
        }
        // A gRPC status carries the gateway's own message; show that, not tonic's wrapping.
        match e.downcast_ref::<tonic::Status>() {
            Some(s) => eprintln!("junction: {} ({:?})", s.message(), s.code()),
            None => eprintln!("junction: {e:#}"),
        }
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => return serve::run(args, cli.token).await,
        Command::Lab(args) => return lab::run(args).await,
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error, such as `| head`.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command_line(), "junction", &mut script);
            std::io::stdout().lock().write_all(&script)?;
            return Ok(());
        }
        Command::Man => {
            clap_mangen::Man::new(command_line()).render(&mut std::io::stdout().lock())?;
            return Ok(());
        }
        _ => {}
    }
    let mut c = client::connect(&cli.server, cli.token.as_deref(), cli.tls_ca.as_deref()).await?;
    if let Command::Stream {
        target,
        play,
        http,
        json,
    } = cli.command
    {
        let args = stream::Args {
            target,
            play,
            http,
            json,
        };
        return stream::stream(&mut c, &cli.server, cli.token.as_deref(), args).await;
    }
    // A reader that left (`| head -1`) ends the command at once, even while it waits on the
    // network between writes. `cat -o FILE` writes no stdout: it finishes its file (or
    // removes the part) whatever happens to the pipe.
    let to_file =
        matches!(&cli.command, Command::Cat { output: Some(o), .. } if o.as_os_str() != "-");
    tokio::select! {
        r = command(&mut c, cli.command) => r,
        () = term::stdout_closed(), if !to_file => Ok(()),
    }
}

async fn command(c: &mut client::Client, command: Command) -> Result<()> {
    match command {
        Command::Serve(_)
        | Command::Lab(_)
        | Command::Completions { .. }
        | Command::Man
        | Command::Stream { .. } => {
            unreachable!("handled above")
        }
        Command::Search {
            query,
            net,
            timeout,
            json,
        } => client::search(c, query, net, timeout, json).await,
        Command::Get {
            target,
            wait,
            json,
            files,
        } => client::get(c, &target, &files, wait, json).await,
        Command::Files {
            id,
            only,
            all,
            json,
        } => client::files(c, id, only, all, json).await,
        Command::Transfers { watch, json } => client::transfers(c, watch, json).await,
        Command::Pause { id } => client::pause(c, id).await,
        Command::Resume { id } => client::resume(c, id).await,
        Command::Cancel { id, keep_data } => client::cancel(c, id, keep_data).await,
        Command::Cat {
            target,
            offset,
            length,
            output,
        } => cat::cat(c, target, offset, length, output).await,
        Command::Networks { json } => client::networks(c, json).await,
        Command::Endpoint {
            action: EndpointAction::Add { network, address },
        } => client::add_endpoint(c, network, address).await,
        Command::Endpoint {
            action: EndpointAction::List { json },
        } => client::list_endpoints(c, json).await,
        Command::Endpoint {
            action: EndpointAction::Remove { network, address },
        } => client::remove_endpoint(c, network, address).await,
        Command::Share { path } => client::share(c, &path).await,
        Command::Unshare { path } => client::unshare(c, &path).await,
        Command::Shares { json } => client::shares(c, json).await,
        Command::Links {
            target,
            torrent,
            json,
        } => client::links(c, &target, torrent.as_deref(), json).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn completions_and_the_man_page_name_every_command() {
        let mut bash = Vec::new();
        let mut cmd = super::Cli::command();
        clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "junction", &mut bash);
        let bash = String::from_utf8(bash).unwrap();
        let mut man = Vec::new();
        clap_mangen::Man::new(super::Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        for sub in [
            "serve",
            "lab",
            "search",
            "get",
            "transfers",
            "cat",
            "stream",
            "completions",
        ] {
            assert!(bash.contains(sub), "bash completions lack {sub}");
            assert!(man.contains(sub), "the man page lacks {sub}");
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
        super::command_line().debug_assert();
    }

    /// Every option and argument of every command says what it is, and `serve` and `lab`
    /// list their own options apart, without the client's.
    #[test]
    fn every_flag_has_a_line_and_server_flags_stand_apart() {
        let mut cmd = super::command_line();
        // As when parsing: the global options reach the subcommands.
        cmd.build();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                let said = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    !said.trim().is_empty(),
                    "{} {id} has no help",
                    sub.get_name()
                );
            }
        }
        for server_side in ["serve", "lab"] {
            let help = cmd
                .find_subcommand_mut(server_side)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(help.contains("Server options:"), "{help}");
            assert!(!help.contains("--server"), "{server_side}: {help}");
            assert!(!help.contains("--tls-ca"), "{server_side}: {help}");
            assert!(!help.contains("Client options:"), "{server_side}: {help}");
        }
        let search = cmd
            .find_subcommand_mut("search")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(search.contains("Client options:") && search.contains("--server"));
        assert!(!search.contains("Server options:"), "{search}");
    }
}
