"""The writes of the accounts app; each public function is one transaction with an audit row."""
