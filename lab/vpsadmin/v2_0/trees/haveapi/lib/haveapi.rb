module HaveAPI
  VERSION = '0.4.2'
end
# lab stand-in for the upstream file; the lab's simulators do the work
