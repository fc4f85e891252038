python -m django djfapi_token --settings=testproject.settings \
    --tenant demo --user demo-user \
    --scope business.companies.read.any --scope business.companies.update.own \
    --expires 600
