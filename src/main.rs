// glibc's malloc serialises the two tokio workers on its arena locks when one frees what the
// other allocated, which every proxied request does; mimalloc frees across threads without a lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tollgate::cli::main()
}
