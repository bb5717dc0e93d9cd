//! Tests of the newcomer's path: `scripts/install-deps` against fake file-system trees, and
//! `tally-node dev` as a real process tree (busy ports, restarts, the environment file, the
//! sandbox PSP's saved state, children that never outlive it, and output into a closed pipe).

mod install_deps;
mod lifecycle;
