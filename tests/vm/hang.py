# A script that never ends: the global timeout must stop it and leave nothing behind.
import time

machine.start()
time.sleep(100000)
