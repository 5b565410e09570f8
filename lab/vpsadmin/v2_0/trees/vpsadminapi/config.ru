require './lib/vpsadmin'

api = VpsAdmin::API.default
run api.app
# lab stand-in for the upstream file; the lab's simulators do the work
