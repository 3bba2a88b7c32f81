"""What a study writes: the HTML report (templates/), the files of a study folder, a batch of studies with its
index page, and the headless-browser check of a report."""
