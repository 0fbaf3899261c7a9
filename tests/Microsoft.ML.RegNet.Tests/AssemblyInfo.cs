// libtorch already uses both cores; running test methods in parallel only adds contention and memory.
[assembly: DoNotParallelize]
