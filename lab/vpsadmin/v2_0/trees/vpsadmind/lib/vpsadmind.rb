module VpsAdmind
  VERSION = '2.0.0'
  DB_VERSION = 15
end
# lab stand-in for the upstream file; the lab's simulators do the work
