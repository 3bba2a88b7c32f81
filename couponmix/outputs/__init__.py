"""What a study writes: the HTML report (templates/), the files of a study folder, and the headless-browser
check of a report."""
