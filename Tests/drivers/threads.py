"""Runs a driver check's worker on several threads at once and prints what they saw, sorted, so that a
run through Sluice and one straight against PostgreSQL print the same."""
import threading


def run_workers(worker, count=8):
    """Calls worker(index) on `count` threads; each returns the lines it saw."""
    lines = []
    lock = threading.Lock()

    def run(index):
        seen = worker(index)
        with lock:
            lines.extend(f"thread {index}: {line}" for line in seen)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for line in sorted(lines):
        print(line)
