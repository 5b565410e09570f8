Gem::Specification.new do |s|
  s.name = 'haveapi'
  s.version = '0.4.2'
end
