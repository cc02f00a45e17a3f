// Preloaded (`--import`) into a process run under `--cpu-prof`: SIGUSR2 ends it with process.exit, so Node
// writes the .cpuprofile (a signal's default action would kill it before the profile is saved).
process.on('SIGUSR2', () => process.exit(0));
