module VpsAdmindCtl
  VERSION = '2.0.0'
end
# lab stand-in for the upstream file; the lab's simulators do the work
