VpsAdmin::API::DatasetPlans.register do
  plan :daily_backup do
    label 'Daily backup'
  end
end
